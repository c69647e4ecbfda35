"""Measure a room answering a live question while the server trains (a script, not a test):

    python -m server.measure_room [--viewers 300] [--window 10] [--rounds 3] [--net convnetjs]

Starts `convnet-demo serve` in a subprocess (server/measure.py start_server) and trains. Then
`--viewers` viewers (each from its own loopback address, as server/measure.py's clients)
open the stream as a phone at the top of the page does (VIEWER_TOP, which has `poll`). In
each of `--rounds` rounds: training speed is measured for `--window` seconds with the room
connected and idle; then the presenter asks a question and every viewer answers it once, at
a random moment (seeded) within `--window` seconds of seeing it, with POST /api/poll/answer
from its own address, while training speed is measured again; the question is closed.
Test-set evaluations are turned off for the run (each stops training for seconds). Reported:
- training images/s: with no viewers; per round idle and while the room answers, and the
  share kept (the machine's load drifts: each answering window is compared with the idle
  window just before it). The target: training keeps 85% of its speed;
- answer acknowledgement (POST sent -> answer read): median, p95, max (target p95 < 500 ms);
- stream latency: the question (POST /api/poll sent -> the event parsed by each viewer), the
  metrics events during the window (worker stamp -> parsed by a probe), the final count
  (last answer acknowledged -> each viewer's event with every answer counted), the reveal.
The viewers' streams are read on raw sockets and only `poll` events are parsed (the rest is
counted and skipped), so the measuring process takes as little of the 2 cores as it can; it
still shares them with the server, as a classroom's phones would not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from server.measure import (AUTH, VIEWER_TOP, client_address, images_per_second, probe,
                            start_server, stop_server, wait_ready)


class RoomViewer:
    """One viewer: its stream on a raw socket (poll events parsed, the rest skipped) and its
    answers, from its own address."""

    def __init__(self, base: str, n: int) -> None:
        self.base, self.address = base, client_address(n)
        self.polls: list[tuple[float, dict]] = []    # (arrival, event) of every poll event
        self.received = 0
        self.seen = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, stop: asyncio.Event) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        reader, self.writer = await asyncio.open_connection(host, int(port),
                                                            local_addr=(self.address, 0))
        self.writer.write(f"GET /api/stream?events={VIEWER_TOP} HTTP/1.1\r\nHost: {host}:{port}"
                          f"\r\n\r\n".encode())
        pending, kind = b"", None
        try:
            while not stop.is_set():
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                arrived = time.monotonic()
                self.received += len(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:          # whole events per chunk: see server/hub.py
                    if line.startswith(b"event: "):
                        kind = line[7:].strip()
                    elif kind == b"poll" and line.startswith(b"data: "):
                        self.polls.append((arrived, json.loads(line[6:])))
                        self.seen.set()
        finally:
            self.writer.close()

    def first(self, where) -> float | None:
        return next((at for at, event in self.polls if where(event)), None)

    async def wait_for(self, poll_id: str) -> None:
        while self.first(lambda e: e["id"] == poll_id) is None:
            self.seen.clear()               # no await between the check and the clear
            await self.seen.wait()

    async def answer(self, poll_id: str, option: int) -> tuple[float, int]:
        """POST /api/poll/answer on a fresh connection from this viewer's address, written
        and read by hand (an HTTP client library would cost the measuring process more CPU
        than the server spends on the request): (seconds from connecting to the whole
        answer read, status)."""
        host, port = self.base.removeprefix("http://").split(":")
        body = json.dumps({"option": option, "poll": poll_id}).encode()
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(host, int(port),
                                                       local_addr=(self.address, 0))
        try:
            writer.write(f"POST /api/poll/answer HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
        finally:
            writer.close()
        return time.monotonic() - started, int(head.split(b" ", 2)[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds per wall second of the server process and of this one, over a window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start()

    def start(self) -> None:
        self.at, self.server, self.here = (time.monotonic(), cpu_seconds(self.pid),
                                           time.process_time())

    def read(self) -> tuple[float, float]:
        wall = time.monotonic() - self.at
        return ((cpu_seconds(self.pid) - self.server) / wall,
                (time.process_time() - self.here) / wall)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def one_question(args, http: httpx.AsyncClient, viewers: list[RoomViewer],
                       rng: random.Random, meter: CpuMeter) -> dict:
    """Ask, let every viewer answer within the window, close; the round's figures."""
    latencies: list[float] = []
    probe_stop = asyncio.Event()
    probing = asyncio.create_task(probe(http, probe_stop, latencies))
    await asyncio.sleep(1)
    first = (await http.get("/api/state")).json()["metrics"]["examples"]
    meter.start()
    asked_at = time.monotonic()
    poll = (await http.post("/api/poll", json={"kind": "output_size", "layer": 1},
                            headers=AUTH)).json()
    picks = [(rng.uniform(0, args.window), rng.randrange(len(poll["options"])))
             for _ in viewers]

    async def one(viewer: RoomViewer, delay: float, option: int) -> tuple[float, int, float]:
        await viewer.wait_for(poll["id"])
        await asyncio.sleep(delay)
        took, status = await viewer.answer(poll["id"], option)
        return took, status, time.monotonic()

    answering = asyncio.gather(*(one(v, *pick) for v, pick in zip(viewers, picks)))
    await asyncio.sleep(args.window)
    last = (await http.get("/api/state")).json()["metrics"]["examples"]
    during = (last - first) / (time.monotonic() - asked_at)
    cpu = meter.read()
    acks = await answering
    probe_stop.set()
    last_ack = max(at for _, _, at in acks)
    await asyncio.sleep(2)                          # the last counts go out
    twin = (await http.get("/api/poll")).json()["poll"]
    closing = time.monotonic()
    reveal = (await http.delete("/api/poll", headers=AUTH)).json()
    await asyncio.sleep(2)
    probing.cancel()
    await asyncio.gather(probing, return_exceptions=True)
    mine = [[(at, e) for at, e in v.polls if e["id"] == poll["id"]] for v in viewers]

    def arrivals(since: float, where) -> list[float]:
        return [next(at for at, e in events if where(e)) - since for events in mine
                if any(where(e) for _, e in events)]

    return {"images_s_during": during, "cpu_during": cpu, "acks": [(t, status) for t, status, _ in acks],
            "question": arrivals(asked_at, lambda e: True),
            "counted": arrivals(last_ack, lambda e: e["total"] == len(viewers)),
            "reveal": arrivals(closing, lambda e: not e["open"]),
            "metrics": latencies, "counted_total": twin["total"],
            "reveal_total": reveal["total"],
            "events_per_viewer": statistics.mean(len(events) for events in mine)}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"samples": 0}
    return {"p50": 1000 * statistics.median(values), "p95": 1000 * _pct(values, 0.95),
            "max": 1000 * max(values), "samples": len(values)}


async def measure(args, base: str, pid: int) -> dict:
    rng = random.Random(args.seed)
    out: dict = {"viewers": args.viewers, "window_s": args.window, "rounds": args.rounds,
                 "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        state = await wait_ready(http)
        out["net"], out["batch_size"] = state["net"]["name"], state["settings"]["batch_size"]
        # no whole-test-set evaluations: each stops training for seconds, and a window
        # that caught one would measure the evaluation, not the room
        patched = await http.patch("/api/params", json={"test_every": 10**9}, headers=AUTH)
        patched.raise_for_status()
        await http.post("/api/control", json={"action": "resume"}, headers=AUTH)
        await asyncio.sleep(args.warmup)
        out["images_s_alone"] = await images_per_second(http, args.window)
        print(f"training, no viewers: {out['images_s_alone']:.1f} images/s", flush=True)
        stop = asyncio.Event()
        viewers = [RoomViewer(base, n) for n in range(args.viewers)]
        tasks = [asyncio.create_task(v.run(stop)) for v in viewers]
        await asyncio.sleep(3)                   # every stream open and caught up
        rounds = []
        # idle and answering windows of the same length, alternated: the machine's load
        # drifts, and each round compares a window with the one just before it
        meter = CpuMeter(pid)
        for r in range(args.rounds):
            meter.start()
            idle = await images_per_second(http, args.window)
            cpu_idle = meter.read()
            figures = await one_question(args, http, viewers, rng, meter)
            figures["images_s_before"], figures["cpu_before"] = idle, cpu_idle
            rounds.append(figures)
            print(f"round {r + 1}: {idle:.1f} images/s with {args.viewers} viewers connected, "
                  f"{figures['images_s_during']:.1f} while they answer", flush=True)
        out["images_s_after"] = await images_per_second(http, args.window)
        out["load_after"] = os.getloadavg()[0]
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    pooled = {key: [x for f in rounds for x in f[key]]
              for key in ("question", "counted", "reveal", "metrics")}
    took = [t for f in rounds for t, _ in f["acks"]]
    statuses = [s for f in rounds for _, s in f["acks"]]
    out.update(
        images_s_before=[f["images_s_before"] for f in rounds],
        images_s_during=[f["images_s_during"] for f in rounds],
        keeps=[f["images_s_during"] / f["images_s_before"] for f in rounds],
        cpu_before=[f["cpu_before"] for f in rounds], cpu_during=[f["cpu_during"] for f in rounds],
        answers_ok=statuses.count(200), answers_refused=len(statuses) - statuses.count(200),
        counted_total=[f["counted_total"] for f in rounds],
        reveal_total=[f["reveal_total"] for f in rounds],
        events_per_viewer=statistics.mean(f["events_per_viewer"] for f in rounds),
        ack_ms=_summary(took), **{f"{k}_ms": _summary(v) for k, v in pooled.items()})
    return out


def report(out: dict) -> None:
    def ms(d: dict) -> str:
        return ", ".join(f"{k} {v:.0f} ms" if isinstance(v, float) else f"{k} {v}"
                         for k, v in d.items())

    def rates(values: list[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    print(f"net {out['net']}, batch {out['batch_size']}, {out['cpus']} CPUs, "
          f"{out['viewers']} viewers answering within {out['window_s']:g} s, "
          f"{out['rounds']} questions; load average {out['load_before']:.1f} before, "
          f"{out['load_after']:.1f} after (other work on the machine included)")
    print(f"training images/s: no viewers {out['images_s_alone']:.1f}; per question, "
          f"viewers connected {rates(out['images_s_before'])}, while they answer "
          f"{rates(out['images_s_during'])} (kept "
          + " / ".join(f"{100 * k:.0f}%" for k in out["keeps"])
          + f", median {100 * statistics.median(out['keeps']):.0f}%); after "
          f"{out['images_s_after']:.1f}")
    print("CPU seconds per second, the server / this measuring process: connected "
          + " / ".join(f"{a:.2f}+{b:.2f}" for a, b in out["cpu_before"]) + "; answering "
          + " / ".join(f"{a:.2f}+{b:.2f}" for a, b in out["cpu_during"]))
    print(f"answers: {out['answers_ok']} acknowledged, {out['answers_refused']} refused; "
          f"counted {out['counted_total']}, revealed {out['reveal_total']}")
    print(f"answer acknowledgement: {ms(out['ack_ms'])}")
    print(f"question reaches the viewers: {ms(out['question_ms'])}")
    print(f"every answer counted on the viewers' streams, after the last ack: "
          f"{ms(out['counted_ms'])}")
    print(f"reveal reaches the viewers: {ms(out['reveal_ms'])}")
    print(f"metrics stream latency during the windows: {ms(out['metrics_ms'])}")
    print(f"poll events per viewer per question: {out['events_per_viewer']:.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.measure_room", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--window", type=float, default=10.0,
                        help="seconds within which every viewer answers")
    parser.add_argument("--rounds", type=int, default=3, help="questions asked in turn")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--net", default="convnetjs")
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        process, base = start_server(Path(directory), net=args.net, data=args.data,
                                     threads=args.threads)
        try:
            out = asyncio.run(measure(args, base, process.pid))
        finally:
            stop_server(process)
    report(out)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
