"""What looking back, forks and races cost training (a script, not a test):

    python -m server.measure_runs [--net convnetjs] [--viewers 50] [--seconds 20] [--rounds 3]
                                  [--threads N]

Starts `convnet-demo serve` in a subprocess (as server/measure.py does) and reports, in one
run, the active run's training images/s, after the warm-up with no test evaluations (each
stops training for seconds; a window that caught one would measure it, not the viewers), in
`--rounds` rounds of three windows (the machine's load drifts; each round compares its own):
- alone (no one scrubbing);
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
import os
import random
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import httpx

from server.measure import (AUTH, client_address, images_per_second, start_server,
                            stop_server, wait_ready)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


MEMO_MAX = 24          # static/js/scrubber.js: the answers a tab keeps


async def timed(http: httpx.AsyncClient, path: str, step: int, served: list,
                memo: OrderedDict | None = None) -> bool:
    """GET path?step=; with a memo, as the page: a step answered lately is not asked again."""
    if memo is not None and (path, step) in memo:
        memo.move_to_end((path, step))
        return True
    started = time.monotonic()
    # Read as it comes, not unpacked: a viewer's device does that, and the simulated room
    # shares this machine's two cores with the server it measures.
    async with http.stream("GET", path, params={"step": step}) as answer:
        async for _ in answer.aiter_raw():
            pass
    if answer.status_code == 200:
        served.append(time.monotonic() - started)
        if memo is not None:
            memo[path, step] = True
            while len(memo) > MEMO_MAX:
                memo.popitem(last=False)
    return answer.status_code == 200


async def scrubber(base: str, n: int, stop: asyncio.Event, served: list, drag: bool) -> None:
    """One viewer. drag: as a hand uses the page's scrubber: a drag across a few
    neighbouring checkpoints (one frame request at a time, at most 10 a second), the test set
    once the handle rests, then 3-5 s looking at it; what the page answers from its memory of
    the last MEMO_MAX answers is not asked for. Not drag: the worst case, a random
    checkpoint's frame and gallery together, again as soon as both are answered."""
    transport = httpx.AsyncHTTPTransport(local_address=client_address(n))
    rng = random.Random(n)
    memo: OrderedDict = OrderedDict()          # the page's memory of answers (drag only)
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
                await timed(http, "/api/frame", steps[at], served, memo)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - moved)))
            await timed(http, "/api/gallery", steps[at], served, memo)
            await asyncio.sleep(rng.uniform(3, 5))


async def scrubbing(args, base: str, http: httpx.AsyncClient, drag: bool) -> tuple[float, list]:
    """Training images/s over one window while the viewers scrub, and the answers' times."""
    stop, served = asyncio.Event(), []
    tasks = [asyncio.create_task(scrubber(base, n, stop, served, drag))
             for n in range(args.viewers)]
    await asyncio.sleep(2)                       # every viewer has its checkpoint list
    cpu = sum(os.times()[:2])
    started = time.monotonic()
    scrubbed = await images_per_second(http, args.seconds)
    args.viewer_cpu[drag].append((sum(os.times()[:2]) - cpu) / (time.monotonic() - started))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1)                       # the last answers leave the thread pool
    return scrubbed, served


async def measure(args, base: str, pid: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        state = await wait_ready(http)
        print(f"net {state['net']['name']} ({state['net']['params']:,} params), batch "
              f"{state['settings']['batch_size']}", flush=True)
        await http.post("/api/control", json={"action": "resume"}, headers=AUTH)
        await asyncio.sleep(args.warmup)
        # Then no whole-test-set evaluations: each stops training for seconds, and a window
        # that caught one would measure the evaluation, not the viewers (the checkpoints go
        # on being taken on their step schedule).
        patched = await http.patch("/api/params", json={"test_every": 10**9}, headers=AUTH)
        patched.raise_for_status()
        rss = rss_mb(pid)
        # Windows alone and scrubbed, alternated: the machine's load drifts, and each round
        # compares its windows with its own window alone.
        figures = {"alone": [], True: [], False: []}
        args.viewer_cpu = {True: [], False: []}   # this process's CPU: the simulated room
        served = {True: [], False: []}
        for r in range(args.rounds):
            figures["alone"].append(await images_per_second(http, args.seconds))
            for drag in (True, False):
                rate, times = await scrubbing(args, base, http, drag)
                figures[drag].append(rate)
                served[drag] += times
            print(f"round {r + 1}: alone {figures['alone'][-1]:.1f}, dragging "
                  f"{figures[True][-1]:.1f}, hammering {figures[False][-1]:.1f} images/s",
                  flush=True)
        # the trainer's own figure: images over its steps' seconds (a racer's is the same)
        own = (await http.get("/api/state")).json()["metrics"]["images_per_s"]
        alone = statistics.median(figures["alone"])
        print(f"training alone: median {alone:8.1f} images/s over {args.rounds} windows of "
              f"{args.seconds:g} s (its steps alone: {own:.1f})", flush=True)
        for drag, how in ((True, "dragging as a hand does"), (False, "hammering (worst case)")):
            changes = [100 * (rate / before - 1)
                       for rate, before in zip(figures[drag], figures["alone"])]
            times = sorted(served[drag])
            p50, p95 = ((times[len(times) // 2], times[int(0.95 * (len(times) - 1))])
                        if times else (float("nan"), float("nan")))
            print(f"training, {args.viewers} viewers scrubbing, {how}: median "
                  f"{statistics.median(figures[drag]):8.1f} images/s; against each round's "
                  f"window alone {', '.join(f'{c:+.1f}%' for c in changes)} (median "
                  f"{statistics.median(changes):+.1f}%); {len(times)} views answered, p50 "
                  f"{1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms; the simulated viewers "
                  f"themselves used {100 * statistics.median(args.viewer_cpu[drag]):.0f}% of "
                  "a core", flush=True)
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
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="each window's length (and each racer's training time)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="windows alone, dragging and hammering, alternated")
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
