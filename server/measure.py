"""Measure the server as a room uses it (a script, not a test):

    python -m server.measure [--net convnetjs] [--data bundled] [--clients 50] [--seconds 10]
    python -m server.measure --soak --minutes 30 [--clients 150]      (see server/soak.py)

Starts `convnet-demo serve` in a subprocess on a free loopback port (so the measuring clients
do not share the server's interpreter lock), then reports, in one run:
- what a page load costs on the wire, compressed and not (the page, its scripts and CSS, the
  state and history it fetches first);
- training images/s with 0 stream clients, with N clients reading every event, and with 0
  again (the machine's load drifts; the two zero-client figures bracket the N-client one);
- bytes per viewer per second and per minute, and what 300 viewers would need, for N clients
  asking what the page asks for: VIEWER_TOP (a phone at the top of the page: figures and
  charts, the network view and test set scrolled away) and VIEWER_ALL (a screen that shows
  every panel); and for N clients reading every event (the presenter's worst case);
- stream latency: a client's receive time minus the `server_time` the worker stamped on each
  metrics event (encoding, hand-off to the event loop, socket, client parsing);
- classify latency while training with the N clients connected, sequential requests.
The clients run in this process on one asyncio loop, each from its own loopback address
(127.1.x.y: per-address limits see a room, not one machine); on a 2-core machine they still
compete with the server for CPU (in a classroom they would be other machines).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TOKEN = "measure-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent
# What static/js/wishes.js asks for (tests/server/test_browser_wishes.py checks they agree).
VIEWER_TOP = "state,net,log,markers,history,metrics:0.5,runs,poll"
VIEWER_ALL = "state,net,log,markers,history,metrics:0.5,frame:10,gallery,runs,poll,leaderboard"
ROOM = 300                                  # viewers a lecture hall holds
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_server(directory: Path, *, net: str = "convnetjs", data: str = "bundled",
                 threads: int | None = None, extra: tuple[str, ...] = ()
                 ) -> tuple[subprocess.Popen, str]:
    """`convnet-demo serve`, paused, on a free port; returns (process, base URL)."""
    command = [sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", "--net", net,
               "--data", data, "--token", TOKEN, "--no-save", "--paused",
               "--snapshot-dir", str(directory), *extra]
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text = ""
    while "presenter opens" not in text:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the server did not start")
        text += line
    # Keep reading its output, or a chatty server blocks on a full pipe.
    drain = threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True)
    drain.start()
    process.drain = drain
    return process, re.search(r"viewers open:\s+(\S+)", text).group(1).rstrip("/")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.drain.join(10)
    process.stdout.close()


async def wait_ready(http: httpx.AsyncClient) -> dict:
    while True:
        state = (await http.get("/api/state")).json()
        if state["status"] in ("training", "paused"):
            return state
        if state["status"] == "error":
            raise SystemExit(f"the run failed to start: {state['error']}")
        await asyncio.sleep(0.2)


async def images_per_second(http: httpx.AsyncClient, seconds: float) -> float:
    first = (await http.get("/api/state")).json()["metrics"]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    last = (await http.get("/api/state")).json()["metrics"]
    return (last["examples"] - first["examples"]) / (time.monotonic() - started)


def client_address(n: int) -> str:
    """The n-th viewer's own loopback address (Linux routes all of 127/8 to lo)."""
    return f"127.1.{n // 250 % 250}.{n % 250 + 1}"


class StreamClient:
    """A viewer's stream on a raw socket: counts the bytes that arrive, learns its id from
    the hello event, and can change its subscription as a page does."""

    def __init__(self, base: str, events: str | None, source: str | None = None) -> None:
        self.base, self.events, self.source = base, events, source
        self.received = 0
        self.id: str | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, stop: asyncio.Event) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        query = "" if self.events is None else f"?events={self.events}"
        reader, self.writer = await asyncio.open_connection(
            host, int(port), local_addr=(self.source, 0) if self.source else None)
        self.writer.write(f"GET /api/stream{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          f"Accept-Encoding: gzip\r\n\r\n".encode())
        head = b""
        try:
            while not stop.is_set():
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                self.received += len(chunk)
                if self.id is None and len(head) < 4096:
                    head += chunk
                    found = re.search(rb'event: hello\r?\ndata: ({[^\r\n]*})', head)
                    if found:
                        self.id = json.loads(found.group(1))["id"]
        finally:
            self.writer.close()

    async def subscribe(self, http: httpx.AsyncClient, events: str) -> int:
        if self.id is None:
            return 0
        return (await http.put(f"/api/stream/{self.id}", json={"events": events})).status_code


async def probe(http: httpx.AsyncClient, stop: asyncio.Event, latencies: list) -> None:
    """A viewer that parses its stream and times each metrics event."""
    async with http.stream("GET", "/api/stream?events=state,metrics", timeout=None) as response:
        kind = None
        async for line in response.aiter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "metrics":
                sent = json.loads(line[6:]).get("server_time")
                if sent is not None:
                    latencies.append(time.time() - sent)


def test_image(width: int = 640, height: int = 480) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.effect_mandelbrot((width, height), (-2, -1.2, 1, 1.2), 64).convert("RGB").save(
        buf, "JPEG", quality=90)
    return buf.getvalue()


async def classify_latencies(http: httpx.AsyncClient, count: int) -> list[float]:
    image, out = test_image(), []
    for _ in range(count):
        started = time.monotonic()
        response = await http.post("/api/classify",
                                   files={"file": ("photo.jpg", image, "image/jpeg")})
        response.raise_for_status()
        out.append(time.monotonic() - started)
    return out


def _ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return (f"median {1000 * statistics.median(values):.1f} ms, p95 {1000 * p95:.1f} ms, "
            f"max {1000 * values[-1]:.1f} ms ({len(values)} samples)")


async def page_load_bytes(http: httpx.AsyncClient) -> tuple[int, int]:
    """Wire bytes of a first page load (page, every script and stylesheet, state, history),
    (compressed, not compressed)."""
    html = (await http.get("/")).text
    paths = ["/", "/api/state", "/api/history"]
    paths += [p.split("?")[0] for p in re.findall(r'(?:src|href)="(/static/[^"]+)"', html)]
    paths += [f"/static/js/{p.name}" for p in sorted((ROOT / "static" / "js").glob("*.js"))
              if f"/static/js/{p.name}" not in paths]
    sizes = {}
    for encoding in ("gzip", "identity"):
        total = 0
        for path in dict.fromkeys(paths):
            async with http.stream("GET", path, headers={"Accept-Encoding": encoding}) as r:
                total += sum([len(chunk) async for chunk in r.aiter_raw()])
        sizes[encoding] = total
    return sizes["gzip"], sizes["identity"]


async def viewers_bytes(base: str, events: str | None, clients: int, seconds: float) -> float:
    """Bytes per second per viewer for `clients` streams asking for `events`, after each has
    had its first (catch-up) events."""
    stop = asyncio.Event()
    viewers = [StreamClient(base, events, client_address(n)) for n in range(clients)]
    tasks = [asyncio.create_task(v.run(stop)) for v in viewers]
    await asyncio.sleep(2)
    before = sum(v.received for v in viewers)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    total = sum(v.received for v in viewers) - before
    elapsed = time.monotonic() - started
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return total / elapsed / max(1, clients)


def _rate(per_viewer: float) -> str:
    return (f"{per_viewer / 1000:7.2f} kB/s per viewer ({per_viewer * 60 / 1e6:.2f} MB/min); "
            f"{ROOM} viewers: {per_viewer * ROOM * 8 / 1e6:.1f} Mbit/s")


async def measure(args, base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        state = await wait_ready(http)
        print(f"net {state['net']['name']} ({state['net']['params']:,} params), batch "
              f"{state['settings']['batch_size']}, {os.cpu_count()} CPUs", flush=True)
        packed, plain = await page_load_bytes(http)
        print(f"page load (page, scripts, CSS, state, history): {packed / 1000:.1f} kB "
              f"gzipped, {plain / 1000:.1f} kB as is", flush=True)
        await http.post("/api/control", json={"action": "resume"}, headers=AUTH)
        await asyncio.sleep(args.warmup)
        alone = await images_per_second(http, args.seconds)
        print(f"training, 0 stream clients:   {alone:8.1f} images/s", flush=True)
        for label, events in (("viewers, top of the page", VIEWER_TOP),
                              ("viewers, every panel in view", VIEWER_ALL)):
            per_viewer = await viewers_bytes(base, events, args.clients, args.seconds)
            print(f"{args.clients} {label} ({events}):\n    {_rate(per_viewer)}", flush=True)
        stop, latencies = asyncio.Event(), []
        everything = [StreamClient(base, None, client_address(n))
                      for n in range(args.clients - 1)]
        tasks = [asyncio.create_task(v.run(stop)) for v in everything]
        tasks.append(asyncio.create_task(probe(http, stop, latencies)))
        await asyncio.sleep(2)
        before = sum(v.received for v in everything)
        crowded = await images_per_second(http, args.seconds)
        per_viewer = (sum(v.received for v in everything) - before) / args.seconds / max(
            1, len(everything))
        print(f"training, {args.clients} stream clients reading every event: {crowded:8.1f} "
              f"images/s\n    {_rate(per_viewer)}", flush=True)
        print(f"stream latency (metrics, publish -> parsed by a client): {_ms(latencies)}",
              flush=True)
        classify = await classify_latencies(http, args.classify)
        print(f"classify latency (640x480 JPEG, while training, {args.clients} clients): "
              f"{_ms(classify)}", flush=True)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(1)
        again = await images_per_second(http, args.seconds)
        print(f"training, 0 stream clients:   {again:8.1f} images/s (again)", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="convnetjs")
    parser.add_argument("--data", default="bundled")
    parser.add_argument("--clients", type=int, default=None,
                        help="stream clients (default 50; with --soak 150)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--classify", type=int, default=30)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--soak", action="store_true",
                        help="run the soak instead: RSS every minute under a room's mix")
    parser.add_argument("--minutes", type=float, default=30.0, help="the soak's length")
    parser.add_argument("--test-every", type=int, default=None,
                        help="the soak's steps between test-set evaluations")
    args = parser.parse_args(argv)
    if args.soak:
        from server.soak import SoakPlan, main_soak
        plan = SoakPlan(seconds=60 * args.minutes, clients=args.clients or 150,
                        net=args.net, data=args.data, threads=args.threads)
        if args.test_every:
            plan.test_every = args.test_every
        return main_soak(plan)
    args.clients = args.clients or 50
    with tempfile.TemporaryDirectory() as directory:
        process, base = start_server(Path(directory), net=args.net, data=args.data,
                                     threads=args.threads)
        try:
            asyncio.run(measure(args, base))
        finally:
            stop_server(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
