"""The soak: does the server's memory stay flat through a lecture's worth of use?

    python -m server.measure --soak --minutes 30 [--clients 150] [--test-every 200]

Starts `convnet-demo serve` in a subprocess (as server.measure does) and, all at once:
- trains with a test-set evaluation every `test_every` steps (a default run tests once an
  epoch; every evaluation used to leak its buffers);
- brings `clients` stream clients in waves: they join over two seconds from their own
  loopback addresses, asking what pages ask for (a phone at the top of the page, a screen
  with every panel, a client that takes every event), change their subscriptions halfway as
  a page does when it scrolls, and leave;
- classifies an uploaded photo every `classify_every_s`, and loads the page's JSON twins;
- scrubs back as the page's scrubber does every `classify_every_s`: a random checkpoint's
  frame and gallery (each a new past view while the run grows);
- every `mix_every_s`, a presenter action: a learning-rate change (a chart marker), a test
  image pinned and unpinned, a snapshot downloaded or saved on the server, a fork at a
  random checkpoint (then the first run active again and the fork deleted); and every
  `replace_every_s` one that replaces the net: PUT /api/net to another preset and back, a
  downloaded snapshot PUT back, a pretrained net (then a learning rate and resume: it ends
  its schedule at 0). During the warm-up every action replaces the net, so every net and
  every kind of load has run before the growth is counted;
and prints the server process's resident memory (VmRSS in /proc/PID/status) every minute,
then its growth after the warm-up (the first minute). The mix itself moves RSS by tens of MB
(two nets of different sizes, snapshots parsed, 150 streams joining), so growth compares
peaks: the highest sample after the warm-up (and of the last `window_s`) against the highest
of the warm-up. Replacing the net frees what its evaluations kept, so a leak per evaluation
shows between replacements, which a presenter makes minutes apart.

`run_soak(plan)` is the same soak for a test: it returns the samples, and stops early once
the growth passes `stop_growth_mb` (a leak fails fast instead of filling the machine).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from server.measure import (AUTH, VIEWER_ALL, VIEWER_TOP, StreamClient, client_address,
                            start_server, stop_server, test_image, wait_ready)

MB = 1e6
PROFILES = (VIEWER_TOP, VIEWER_TOP, VIEWER_ALL, None)   # None: every event, the old way
# Answers the soak expects now and then: busy (classify slots, rate limits), not ready.
EXPECTED = {200, 429, 503}


@dataclass
class SoakPlan:
    seconds: float = 1800.0
    clients: int = 150
    net: str = "convnetjs"
    other_net: str = "cifar_small"
    pretrained: str = "convnetjs"
    data: str = "bundled"
    threads: int | None = None
    test_every: int = 200
    warmup_s: float = 60.0                 # growth counts against this one's late peak
    window_s: float = 60.0                 # the end's peak: over the last window_s
    wave_every_s: float = 30.0
    wave_hold_s: float = 15.0
    mix_every_s: float = 10.0
    replace_every_s: float = 120.0
    classify_every_s: float = 1.0
    sample_every_s: float = 5.0
    report_every_s: float = 60.0
    min_tests_after_warmup: int = 0        # go on past `seconds` until this many evaluations
    stop_growth_mb: float | None = 2000.0  # stop as soon as the growth passes this
    quiet: bool = False


@dataclass
class Sample:
    seconds: float
    rss: int                               # bytes
    tests: int                             # test-set evaluations so far
    step: int | None


@dataclass
class SoakResult:
    warmup_s: float
    window_s: float
    samples: list[Sample] = field(default_factory=list)
    answers: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    waves: int = 0
    actions: int = 0

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.seconds < end]

    @property
    def baseline(self) -> list[Sample]:
        """The warm-up's samples (none until it is over): every net and load has run."""
        if not self.samples or self.samples[-1].seconds < self.warmup_s:
            return []
        return self.between(0, self.warmup_s)

    @property
    def baseline_peak(self) -> int:
        return max(s.rss for s in self.baseline)

    @property
    def growth(self) -> int:
        """Peak RSS of the last window minus the baseline's peak (bytes)."""
        last = self.samples[-1].seconds
        return max(s.rss for s in self.between(last - self.window_s, last + 1)) \
            - self.baseline_peak

    @property
    def largest_growth(self) -> int:
        later = self.between(self.warmup_s, float("inf"))
        return max(s.rss for s in later) - self.baseline_peak

    @property
    def tests_after_warmup(self) -> int:
        return self.samples[-1].tests - self.baseline[-1].tests if self.baseline else 0


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Soak:
    def __init__(self, plan: SoakPlan, pid: int, base: str) -> None:
        self.plan, self.pid, self.base = plan, pid, base
        self.result = SoakResult(plan.warmup_s, plan.window_s)
        self.stop = asyncio.Event()
        self.tests = 0
        self.step: int | None = None
        self.nudges = 0
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        if not self.plan.quiet:
            print(text, flush=True)

    def note(self, what: str, response: httpx.Response, also: tuple[int, ...] = ()) -> None:
        self.result.answers[(what, response.status_code)] += 1
        if response.status_code not in EXPECTED and response.status_code not in also:
            self.result.problems.append(f"{what}: {response.status_code} {response.text[:200]}")

    async def sleep(self, seconds: float) -> bool:
        """False once the soak is over."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            return True
        return False

    # --- what is measured -----------------------------------------------------------------
    async def monitor(self, http: httpx.AsyncClient) -> None:
        """Counts test-set evaluations (one log line each) and follows the step."""
        while not self.stop.is_set():
            try:
                async with http.stream("GET", "/api/stream?events=log,metrics",
                                       timeout=httpx.Timeout(30, read=60)) as response:
                    kind = None
                    async for line in response.aiter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and kind in ("log", "metrics"):
                            data = json.loads(line[6:])
                            if kind == "log" and data.get("text", "").startswith("test accuracy"):
                                self.tests += 1
                            elif kind == "metrics":
                                self.step = data.get("step")
            except httpx.HTTPError:
                await self.sleep(1)

    async def sampler(self) -> None:
        plan, result = self.plan, self.result
        next_report = plan.report_every_s
        while True:
            now = time.monotonic() - self.started
            result.samples.append(Sample(now, rss_bytes(self.pid), self.tests, self.step))
            if now >= next_report:
                self.report(next_report - plan.report_every_s, now)
                next_report += plan.report_every_s
            if result.baseline:
                done = (now >= plan.seconds
                        and result.tests_after_warmup >= plan.min_tests_after_warmup)
                runaway = (plan.stop_growth_mb is not None
                           and result.largest_growth > plan.stop_growth_mb * MB)
                if done or runaway or now >= 3 * plan.seconds + plan.warmup_s:
                    self.stop.set()
                    return
            if not await self.sleep(plan.sample_every_s):
                return

    def report(self, start: float, end: float) -> None:
        """One line per report period: RSS low, median and peak over it."""
        rss = sorted(s.rss for s in self.result.between(start, end + 1))
        last = self.result.samples[-1]
        self.say(f"{end / 60:5.1f} min: RSS {rss[0] / MB:6.1f} / {rss[len(rss) // 2] / MB:6.1f} / "
                 f"{rss[-1] / MB:6.1f} MB (low / median / peak), {last.tests} test evaluations, "
                 f"step {last.step}, {self.result.waves} waves of {self.plan.clients} clients, "
                 f"{self.result.actions} presenter actions")

    # --- the load ---------------------------------------------------------------------------
    async def waves(self, http: httpx.AsyncClient) -> None:
        plan = self.plan
        while not self.stop.is_set():
            leave = asyncio.Event()
            clients = [StreamClient(self.base, PROFILES[n % len(PROFILES)], client_address(n))
                       for n in range(plan.clients)]
            tasks = []
            for client in clients:
                tasks.append(asyncio.create_task(client.run(leave)))
                await asyncio.sleep(2.0 / max(1, plan.clients))
            self.result.waves += 1
            if await self.sleep(plan.wave_hold_s / 2):
                for n, client in enumerate(clients[::3]):    # a third scroll somewhere else
                    events = VIEWER_ALL if client.events == VIEWER_TOP else VIEWER_TOP
                    try:
                        status = await client.subscribe(http, events)
                    except httpx.HTTPError:
                        continue
                    if status:
                        self.result.answers[("stream subscription", status)] += 1
                await self.sleep(plan.wave_hold_s / 2)
            leave.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sleep(max(0.0, plan.wave_every_s - plan.wave_hold_s - 2))

    async def uploads(self, http: httpx.AsyncClient) -> None:
        images = [test_image(640, 480), test_image(48, 40), test_image(1200, 900)]
        turn = 0
        while await self.sleep(self.plan.classify_every_s):
            image = images[turn % len(images)]
            turn += 1
            try:
                response = await http.post("/api/classify",
                                           files={"file": ("photo.jpg", image, "image/jpeg")})
                self.note("classify", response)
                for path in ("/api/state", "/api/history") if turn % 5 == 0 else ():
                    self.note(f"GET {path}", await http.get(path))
            except httpx.HTTPError as exc:
                self.result.problems.append(f"classify: {type(exc).__name__}")

    async def scrubber(self, http: httpx.AsyncClient) -> None:
        rng = random.Random(0)
        while await self.sleep(self.plan.classify_every_s):
            try:
                listing = await http.get("/api/checkpoints")
                self.note("GET /api/checkpoints", listing)
                kept = listing.json().get("checkpoints") if listing.status_code == 200 else None
                if kept:
                    step = rng.choice(kept)["step"]
                    for path in ("/api/frame", "/api/gallery"):
                        # 404: the net changed (its checkpoints with it) since the list
                        self.note(f"GET {path}?step", await http.get(path, params={"step": step}),
                                  also=(404,))
            except httpx.HTTPError as exc:
                self.result.problems.append(f"scrub: {type(exc).__name__}")

    async def presenter(self, http: httpx.AsyncClient) -> None:
        plan = self.plan
        replacing = [("PUT /api/net", self.change_net, plan.other_net),
                     ("PUT /api/net", self.change_net, plan.net),
                     ("PUT /api/snapshot", self.reload_snapshot, None),
                     ("POST /api/pretrained", self.load_pretrained, plan.pretrained)]
        light = [("PATCH /api/params", self.nudge_learning_rate, None),
                 ("POST /api/snapshot", self.save_snapshot, None),
                 ("PUT /api/example", self.pin_example, 3),
                 ("GET /api/snapshot", self.download_snapshot, None),
                 ("PUT /api/example", self.pin_example, None),
                 ("POST /api/fork", self.fork_and_back, None)]
        turns = [0, 0]
        next_replacement = 0.0
        while await self.sleep(plan.mix_every_s):
            now = time.monotonic() - self.started
            if now < plan.warmup_s or now >= next_replacement:
                what, action, argument = replacing[turns[0] % len(replacing)]
                turns[0] += 1
                next_replacement = now + plan.replace_every_s
            else:
                what, action, argument = light[turns[1] % len(light)]
                turns[1] += 1
            try:
                self.note(what, await action(http, argument))
                await self.keep_training(http)
            except httpx.HTTPError as exc:
                self.result.problems.append(f"{what}: {type(exc).__name__}")
            self.result.actions += 1

    async def keep_training(self, http: httpx.AsyncClient) -> None:
        """Frequent evaluations (a loaded snapshot brings its own options), a learning rate
        above 0 (the pretrained nets end their cosine schedules at 0), running."""
        self.note("PATCH /api/params", await http.patch(
            "/api/params", headers=AUTH, json={"test_every": self.plan.test_every,
                                               "test_chunk": 250}))
        state = (await http.get("/api/state")).json()
        if not (state.get("metrics") or {}).get("lr"):
            self.note("PATCH /api/params", await http.patch(
                "/api/params", headers=AUTH, json={"schedule": "constant",
                                                   "learning_rate": 0.01}))
        if state.get("status") != "training":
            self.note("POST /api/control", await http.post(
                "/api/control", headers=AUTH, json={"action": "resume"}))

    async def change_net(self, http, preset):
        return await http.put("/api/net", headers=AUTH, json={"preset": preset})

    async def reload_snapshot(self, http, _):
        saved = await http.get("/api/snapshot", headers=AUTH)
        if saved.status_code != 200:
            return saved
        return await http.put("/api/snapshot", headers=AUTH,
                              files={"file": ("run.json", saved.content, "application/json")})

    async def save_snapshot(self, http, _):
        return await http.post("/api/snapshot", headers=AUTH)

    async def download_snapshot(self, http, _):
        return await http.get("/api/snapshot", headers=AUTH)

    async def pin_example(self, http, index):
        return await http.put("/api/example", headers=AUTH, json={"index": index})

    async def nudge_learning_rate(self, http, _):
        self.nudges += 1
        return await http.patch("/api/params", headers=AUTH,
                                json={"learning_rate": 0.01 + 0.001 * (self.nudges % 2)})

    async def fork_and_back(self, http, _):
        runs = (await http.get("/api/runs")).json()
        kept = (await http.get("/api/checkpoints")).json().get("checkpoints") or [{"step": 0}]
        forked = await http.post("/api/fork", headers=AUTH, json={
            "step": random.choice(kept)["step"], "params": {"learning_rate": 0.005}})
        if forked.status_code != 200:
            return forked
        self.note("PUT /api/runs/active", await http.put(
            "/api/runs/active", headers=AUTH, json={"run": runs["active"]}))
        return await http.delete(f"/api/runs/{forked.json()['run']}", headers=AUTH)

    async def load_pretrained(self, http, name):
        return await http.post("/api/pretrained", headers=AUTH, json={"name": name})

    async def run(self) -> SoakResult:
        async with httpx.AsyncClient(base_url=self.base, timeout=120) as http:
            await wait_ready(http)
            await self.keep_training(http)
            self.started = time.monotonic()
            jobs = [self.monitor(http), self.sampler(), self.waves(http), self.uploads(http),
                    self.scrubber(http), self.presenter(http)]
            tasks = [asyncio.create_task(job) for job in jobs]
            await self.stop.wait()
            await asyncio.wait(tasks, timeout=30)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.result


def run_soak(plan: SoakPlan, directory: Path | None = None) -> SoakResult:
    with tempfile.TemporaryDirectory() as scratch:
        process, base = start_server(Path(directory or scratch), net=plan.net, data=plan.data,
                                     threads=plan.threads)
        try:
            return asyncio.run(Soak(plan, process.pid, base).run())
        finally:
            stop_server(process)


def main_soak(plan: SoakPlan) -> int:
    print(f"soak: {plan.seconds / 60:g} minutes, {plan.clients} stream clients in waves every "
          f"{plan.wave_every_s:g} s, a test-set evaluation every {plan.test_every} steps, a "
          f"presenter action every {plan.mix_every_s:g} s (one replacing the net every "
          f"{plan.replace_every_s:g} s), a classify every "
          f"{plan.classify_every_s:g} s; RSS of the server process every minute", flush=True)
    result = run_soak(plan)
    if not result.baseline:
        print("the soak ended before its warm-up was over")
        return 1
    last = result.samples[-1]
    if plan.stop_growth_mb is not None and result.largest_growth > plan.stop_growth_mb * MB:
        print(f"stopped early: RSS grew more than {plan.stop_growth_mb:g} MB (a leak)")
    print(f"peak RSS in the first {plan.warmup_s / 60:g} min: "
          f"{result.baseline_peak / MB:.1f} MB; in the last {plan.window_s:g} s (to "
          f"{last.seconds / 60:.1f} min): {(result.baseline_peak + result.growth) / MB:.1f} MB: "
          f"growth {result.growth / MB:+.1f} MB (highest peak {result.largest_growth / MB:+.1f} "
          f"MB) over {result.tests_after_warmup} test evaluations")
    answers = ", ".join(f"{what} {status}: {n}" for (what, status), n in
                        sorted(result.answers.items()))
    print(f"answers: {answers}")
    if result.problems:
        print(f"{len(result.problems)} unexpected answers, the first: {result.problems[:5]}")
    return 0
