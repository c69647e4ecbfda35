"""What looking back, forks and races cost training (a script, not a test):

    python -m server.measure_runs [--net convnetjs] [--viewers 50] [--seconds 20] [--threads N]

Starts `convnet-demo serve` in a subprocess (as server/measure.py does) and reports, in one
run, the active run's training images/s:
- alone (no one scrubbing), before and after the rest (the machine's load drifts);
- while N viewers scrub, two ways: as hands use the page's scrubber (drags across a few
  neighbouring checkpoints, a frame at a time, the test set when the handle rests, then a few
  seconds looking), and the worst case (a random checkpoint's frame and gallery, again as
  soon as both are answered);
and, for a race of 4 runs for equal time, each racer's own images/s (its steps' images over
its steps' seconds, the server's figure) against the single run's: the race's cost per run.
Memory: the checkpoints' bytes and count (GET /api/checkpoints, the server's own figure in
the log) and the server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from server.measure import (AUTH, client_address, images_per_second, start_server,
                            stop_server, wait_ready)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def timed(http: httpx.AsyncClient, path: str, step: int, served: list) -> bool:
    started = time.monotonic()
    answer = await http.get(path, params={"step": step})
    if answer.status_code == 200:
        served.append(time.monotonic() - started)
    return answer.status_code == 200


async def scrubber(base: str, n: int, stop: asyncio.Event, served: list, drag: bool) -> None:
    """One viewer. drag: as a hand uses the page's scrubber: a drag across a few
    neighbouring checkpoints (one frame request at a time, at most 10 a second), the test set
    once the handle rests, then 3-5 s looking at it. Not drag: the worst case, a random
    checkpoint's frame and gallery together, again as soon as both are answered."""
    transport = httpx.AsyncHTTPTransport(local_address=client_address(n))
    rng = random.Random(n)
    async with httpx.AsyncClient(base_url=base, timeout=60, transport=transport) as http:
        steps = [c["step"] for c in (await http.get("/api/checkpoints")).json()["checkpoints"]]
        while not stop.is_set():
            at = rng.randrange(len(steps))
            if not drag:
                answers = await asyncio.gather(timed(http, "/api/frame", steps[at], served),
                                               timed(http, "/api/gallery", steps[at], served))
                if not all(answers):
                    await asyncio.sleep(0.5)
                continue
            for _ in range(rng.randint(3, 12)):
                at = max(0, min(len(steps) - 1, at + rng.choice((-2, -1, 1, 2))))
                moved = time.monotonic()
                await timed(http, "/api/frame", steps[at], served)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - moved)))
            await timed(http, "/api/gallery", steps[at], served)
            await asyncio.sleep(rng.uniform(3, 5))


async def measure(args, base: str, pid: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        state = await wait_ready(http)
        print(f"net {state['net']['name']} ({state['net']['params']:,} params), batch "
              f"{state['settings']['batch_size']}", flush=True)
        await http.post("/api/control", json={"action": "resume"}, headers=AUTH)
        await asyncio.sleep(args.warmup)
        rss = rss_mb(pid)
        alone = await images_per_second(http, args.seconds)
        # the trainer's own figure: images over its steps' seconds (a racer's is the same)
        own = (await http.get("/api/state")).json()["metrics"]["images_per_s"]
        print(f"training alone:                       {alone:8.1f} images/s "
              f"(its steps alone: {own:.1f})", flush=True)
        for drag, how in ((True, "dragging as a hand does"), (False, "hammering (worst case)")):
            stop, served = asyncio.Event(), []
            tasks = [asyncio.create_task(scrubber(base, n, stop, served, drag))
                     for n in range(args.viewers)]
            await asyncio.sleep(2)
            scrubbed = await images_per_second(http, args.seconds)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            served.sort()
            p50, p95 = ((served[len(served) // 2], served[int(0.95 * (len(served) - 1))])
                        if served else (float("nan"), float("nan")))
            print(f"training, {args.viewers} viewers scrubbing, {how}: {scrubbed:8.1f} "
                  f"images/s ({100 * (scrubbed / alone - 1):+.1f}%); {len(served)} views "
                  f"answered, p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms", flush=True)
            await asyncio.sleep(2)
        again = await images_per_second(http, args.seconds)
        print(f"training alone (again):               {again:8.1f} images/s", flush=True)
        listing = (await http.get("/api/checkpoints")).json()["checkpoints"]
        print(f"checkpoints of the run: {len(listing)}, steps {listing[0]['step']:,}.."
              f"{listing[-1]['step']:,}; server RSS {rss:.0f} -> {rss_mb(pid):.0f} MB",
              flush=True)
        body = {"equal": "time", "seconds": args.seconds,
                "runs": [{"name": f"lr {lr:g}", "params": {"learning_rate": lr}}
                         for lr in (0.02, 0.01, 0.005, 0.0025)]}
        batch = state["settings"]["batch_size"]
        response = await http.post("/api/race", json=body, headers=AUTH)
        if response.status_code != 200:
            raise SystemExit(f"the race was refused: {response.text}")
        started = time.monotonic()
        while True:          # until every racer has had its time (then the final tests)
            race = (await http.get("/api/race")).json()["race"]
            if all(r["status"] != "racing" for r in race["runs"]):
                break
            await asyncio.sleep(0.2)
        racing = time.monotonic() - started
        images = sum(r["steps"] for r in race["runs"]) * batch
        while race["status"] == "running":
            await asyncio.sleep(1)
            race = (await http.get("/api/race")).json()["race"]
        rates = [r["images_per_s"] for r in race["runs"]]
        mean = sum(rates) / len(rates)
        print(f"race of 4 for {args.seconds:g} s of training each: per run (its own steps) "
              + ", ".join(f"{r:.1f}" for r in rates)
              + f" images/s, mean {mean:.1f} ({100 * (mean / own - 1):+.1f}% against the run "
              f"alone's own steps); the worker in all {images / racing:.1f} images/s "
              f"({100 * (images / racing / alone - 1):+.1f}% against the run alone); "
              f"server RSS {rss_mb(pid):.0f} MB", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.measure_runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="convnetjs")
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="training before the first figure (checkpoints accumulate)")
    parser.add_argument("--threads", type=int)
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
