"""Measure a room playing "beat the network" while the server trains (a script, not a test):

    python -m server.measure_challenge [--players 300] [--window 10] [--rounds 2] [--net convnetjs]

Starts `convnet-demo serve` in a subprocess (server/measure.py start_server) and trains.
`--players` players, each from its own loopback address (server/measure.py client_address),
hold a stream open as a phone showing the game does (VIEWER_TOP plus `leaderboard`, read on
a raw socket and only counted). Training speed is measured for `--window` seconds with the
room connected and idle; then in each of `--rounds` windows every player asks for an image
(GET /api/challenge) at a random moment (seeded) within the window and answers it (POST
/api/challenge) after a random 0.3-1.5 s "thinking", while training speed is measured again.
Reported: training images/s idle and while the room plays, and the share kept (each playing
window against the idle window before it; target 85%); GET and POST latency (request sent ->
answer read: median, p95, max; target for answers: p95 < 500 ms); the leaderboard events the
server sent (GET /api/leaderboard's version) and the answers it counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

import httpx

from server.measure import (
    VIEWER_TOP,
    StreamClient,
    _ms,
    client_address,
    images_per_second,
    start_server,
    stop_server,
    wait_ready,
)

CLASSES_FALLBACK = ["cat"]


class Player:
    def __init__(self, base: str, n: int, events: str) -> None:
        self.address = client_address(n)
        self.http = httpx.AsyncClient(base_url=base, timeout=60, transport=httpx.AsyncHTTPTransport(
            local_address=self.address))
        self.stream = StreamClient(base, events, source=self.address)

    async def play(self, rng: random.Random, window: float, gets: list, posts: list,
                   failures: list) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(rng.uniform(0, window - 1.5))
        started = loop.time()
        response = await self.http.get("/api/challenge")
        gets.append(loop.time() - started)
        if response.status_code != 200:
            failures.append(("GET", response.status_code, response.text[:200]))
            return
        image = response.json()
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        started = loop.time()
        answer = await self.http.post("/api/challenge", json={
            "id": image["id"], "label": rng.choice(image["classes"] or CLASSES_FALLBACK),
            "nickname": f"player {self.address}"})
        posts.append(loop.time() - started)
        if answer.status_code != 200:
            failures.append(("POST", answer.status_code, answer.text[:200]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args, base: str, pid: int) -> None:
    rng = random.Random(args.seed)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        await wait_ready(http)
        await http.post("/api/control", json={"action": "resume"},
                        headers={"Authorization": "Bearer measure-token-0123456789abcdef"})
        await asyncio.sleep(3)                         # past the first steps' warm-up
        print(f"training alone: {await images_per_second(http, args.window):.0f} images/s")
        players = [Player(base, n, args.events) for n in range(args.players)]
        stop = asyncio.Event()
        streams = [asyncio.create_task(p.stream.run(stop)) for p in players]
        await asyncio.sleep(2)
        for round_ in range(args.rounds):
            cpu = cpu_seconds(pid)
            idle = await images_per_second(http, args.window)
            idle_cpu, cpu = cpu_seconds(pid) - cpu, cpu_seconds(pid)
            gets: list[float] = []
            posts: list[float] = []
            failures: list = []
            plays = asyncio.gather(*(p.play(rng, args.window, gets, posts, failures)
                                     for p in players))
            playing = await images_per_second(http, args.window)
            await plays
            playing_cpu = cpu_seconds(pid) - cpu
            print(f"round {round_ + 1}: {args.players} players connected, idle "
                  f"{idle:.0f} images/s; playing {playing:.0f} images/s "
                  f"({100 * playing / idle:.0f}% kept); the server's CPU "
                  f"{idle_cpu / args.window:.2f} -> {playing_cpu / args.window:.2f} cores")
            print(f"  GET /api/challenge  {_ms(gets)}")
            print(f"  POST /api/challenge {_ms(posts)}")
            if failures:
                print(f"  {len(failures)} refused, e.g. {failures[:3]}")
        board = (await http.get("/api/leaderboard")).json()
        print(f"leaderboard: {board['answers']} answers counted, version {board['version']}, "
              f"{board['players']} players; stream bytes per player "
              f"{sum(p.stream.received for p in players) / len(players) / 1024:.0f} KiB")
        stop.set()
        await asyncio.gather(*streams, return_exceptions=True)
        await asyncio.gather(*(p.http.aclose() for p in players))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=300)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--net", default="convnetjs")
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--events", default=VIEWER_TOP + ",leaderboard",
                        help="what each player's stream asks for (default: a phone showing "
                             "the game)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        process, base = start_server(Path(directory), net=args.net, data=args.data,
                                     threads=args.threads)
        try:
            asyncio.run(measure(args, base, process.pid))
        finally:
            stop_server(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
