"""Measure the server as a room uses it (a script, not a test):

    python -m server.measure [--net convnetjs] [--data bundled] [--clients 50] [--seconds 10]

Starts `convnet-demo serve` in a subprocess on a free loopback port (so the measuring clients
do not share the server's interpreter lock), then reports, in one run:
- training images/s with 0 stream clients, with N clients reading every event, and with 0
  again (the machine's load drifts; the two zero-client figures bracket the N-client one);
- stream latency: a client's receive time minus the `server_time` the worker stamped on each
  metrics event (encoding, hand-off to the event loop, socket, client parsing);
- classify latency while training with the N clients connected, sequential requests.
The clients run in this process on one asyncio loop; on a 2-core machine they still compete
with the server for CPU (in a classroom they would be other machines).
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
import time
from pathlib import Path

import httpx

TOKEN = "measure-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


def start_server(args, directory: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "engine.cli.main", "serve", "--port", "0", "--net",
               args.net, "--data", args.data, "--token", TOKEN, "--no-save", "--paused",
               "--snapshot-dir", str(directory)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text = ""
    while "presenter opens" not in text:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the server did not start")
        text += line
    return process, re.search(r"viewers open:\s+(\S+)", text).group(1).rstrip("/")


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


async def sink(base: str, stop: asyncio.Event, counter: list) -> None:
    """A viewer that reads and discards its stream."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /api/stream HTTP/1.1\r\nHost: measure\r\n\r\n")
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 1.0)
            except TimeoutError:
                continue
            if not chunk:
                return
            counter[0] += len(chunk)
    finally:
        writer.close()


async def probe(http: httpx.AsyncClient, stop: asyncio.Event, latencies: list) -> None:
    """A viewer that parses its stream and times each metrics event."""
    async with http.stream("GET", "/api/stream", timeout=None) as response:
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


def test_image() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.effect_mandelbrot((640, 480), (-2, -1.2, 1, 1.2), 64).convert("RGB").save(
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


async def measure(args, base: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        state = await wait_ready(http)
        print(f"net {state['net']['name']} ({state['net']['params']:,} params), batch "
              f"{state['settings']['batch_size']}, {os.cpu_count()} CPUs", flush=True)
        await http.post("/api/control", json={"action": "resume"}, headers=auth)
        await asyncio.sleep(args.warmup)
        alone = await images_per_second(http, args.seconds)
        print(f"training, 0 stream clients:   {alone:8.1f} images/s", flush=True)
        stop, received, latencies = asyncio.Event(), [0], []
        tasks = [asyncio.create_task(sink(base, stop, received))
                 for _ in range(args.clients - 1)]
        tasks.append(asyncio.create_task(probe(http, stop, latencies)))
        await asyncio.sleep(2)
        received[0] = 0                   # bytes during the timed window only
        crowded = await images_per_second(http, args.seconds)
        print(f"training, {args.clients} stream clients:  {crowded:8.1f} images/s "
              f"({received[0] / args.seconds / 2**20:.2f} MiB/s to the sinks)", flush=True)
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
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--classify", type=int, default=30)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        process, base = start_server(args, Path(directory))
        try:
            asyncio.run(measure(args, base))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
