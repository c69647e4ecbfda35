"""Hostile clients and a fresh client's view of the server, for the attack tests and by hand.

An attacker holds many raw sockets open from its own loopback address (127.0.0.x: the server
sees a different client, as it would see another device on the room's Wi-Fi) and reopens
those the server drops, at a bounded pace. A probe measures what a newcomer gets meanwhile:
`GET /api/state` and `POST /api/classify`, each on a fresh connection, and the training
steps made.

By hand, against a running `convnet-demo serve --threads 1` (PORT):
    python -m tests.server.attacks --url http://127.0.0.1:PORT --attack uploads --seconds 30
attacks: uploads (32 bodies declared, never sent), heads (unfinished request heads),
disconnects (uploads abandoned half-way).
"""

from __future__ import annotations

import argparse
import io
import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
from PIL import Image

TRICKLE = b"X-a: b\r\n"


def stalled_upload(base: str) -> bytes:
    """The head of a 4 MB classify upload whose body never comes."""
    return (f"POST /api/classify HTTP/1.1\r\nHost: {_netloc(base)}\r\nContent-Type: "
            "image/png\r\nContent-Length: 4000000\r\n\r\n").encode()


def unfinished_head(base: str) -> bytes:
    return f"GET /api/state HTTP/1.1\r\nHost: {_netloc(base)}\r\nUser-Agent: slow".encode()


def small_png(side: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 60, 200)).save(buf, "PNG")
    return buf.getvalue()


def _netloc(base: str) -> str:
    return base.removeprefix("http://").rstrip("/")


def _address(base: str) -> tuple[str, int]:
    host, port = _netloc(base).split(":")
    return host, int(port)


class Attacker:
    """`count` sockets from `sources` (round robin), each sent `payload` and then held; every
    `trickle_s` each gets one more header line (so an idle timer that data resets never
    fires); dropped sockets are reopened, at most `reopen_per_s` a second."""

    def __init__(self, base: str, count: int, payload: bytes, sources=("127.0.0.2",),
                 trickle_s: float | None = None, reopen_per_s: float = 200.0) -> None:
        self.address = _address(base)
        self.count, self.payload, self.sources = count, payload, tuple(sources)
        self.trickle_s, self.reopen_per_s = trickle_s, reopen_per_s
        self.sockets: list[socket.socket] = []
        self.opened = self.dropped = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Attacker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
        for sock in self.sockets:
            sock.close()

    def _open(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.sources[self.opened % len(self.sources)], 0))
            sock.settimeout(2)
            sock.connect(self.address)
            sock.sendall(self.payload)
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.failed += 1
            return None
        self.opened += 1
        return sock

    def _run(self) -> None:
        last_trickle = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            budget = max(1, int(self.reopen_per_s * 0.1))
            while len(self.sockets) < self.count and budget > 0 and not self._stop.is_set():
                budget -= 1
                sock = self._open()
                if sock is not None:
                    self.sockets.append(sock)
            self._reap()
            if self.trickle_s is not None and started - last_trickle >= self.trickle_s:
                last_trickle = started
                for sock in self.sockets:
                    try:
                        sock.send(TRICKLE)
                    except OSError:
                        pass
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def _reap(self) -> None:
        """Close the sockets the server hung up on (readable: an answer, EOF or a reset)."""
        if not self.sockets:
            return
        poller = select.poll()            # select() stops at descriptor 1024
        by_fd = {sock.fileno(): sock for sock in self.sockets}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            try:
                alive = sock.recv(65536) != b""
            except BlockingIOError:
                alive = True
            except OSError:
                alive = False
            if alive:                     # an answer before the hang-up: read it to the end
                continue
            self.sockets.remove(sock)
            sock.close()
            self.dropped += 1


def abandon_uploads(base: str, count: int, source: str = "127.0.0.2") -> None:
    """`count` classify uploads that send half their declared body and hang up."""
    body = small_png(200) * 4
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((source, 0))
            sock.settimeout(5)
            sock.connect(_address(base))
            sock.sendall(f"POST /api/classify HTTP/1.1\r\nHost: {_netloc(base)}\r\n"
                         f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode() + body[:len(body) // 2])
            time.sleep(0.05)


@dataclass
class Probe:
    """A newcomer's experience: seconds per request (None: failed or timed out)."""

    state: list = field(default_factory=list)
    classify: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    steps: tuple = (0, 0)                  # training step before and after (None: no answer)
    seconds: float = 0.0

    @staticmethod
    def _p95(times: list) -> float:
        ordered = sorted(t if t is not None else float("inf") for t in times)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0

    def summary(self) -> dict:
        return {"tries": len(self.state), "state_p95_s": round(self._p95(self.state), 3),
                "classify_p95_s": round(self._p95(self.classify), 3),
                "failed": sum(t is None for t in self.state + self.classify),
                "statuses": self.statuses,
                "steps_per_s": round((self.steps[1] - self.steps[0]) / self.seconds, 1)
                if self.seconds and None not in self.steps else None}


def _step(base: str) -> int | None:
    try:
        metrics = httpx.get(f"{base}/api/state", timeout=30).json()["metrics"]
    except httpx.HTTPError:
        return None                        # the server did not answer in 30 s
    return metrics["step"] if metrics else 0


def probe(base: str, tries: int = 20, timeout: float = 5.0, pause: float = 0.1) -> Probe:
    """`tries` rounds of GET /api/state and POST /api/classify, each on a new connection."""
    result, image = Probe(), small_png()
    first_step, started = _step(base), time.monotonic()
    for _ in range(tries):
        for times, method, path, kwargs in (
                (result.state, "GET", "/api/state", {}),
                (result.classify, "POST", "/api/classify",
                 {"files": {"file": ("x.png", image, "image/png")}})):
            began = time.monotonic()
            try:
                with httpx.Client(timeout=timeout) as client:
                    response = client.request(method, base + path, **kwargs)
                status = response.status_code
                times.append(time.monotonic() - began if status == 200 else None)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
                times.append(None)
            key = f"{method} {path} {status}"
            result.statuses[key] = result.statuses.get(key, 0) + 1
        time.sleep(pause)
    result.seconds = time.monotonic() - started
    result.steps = (first_step, _step(base))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--attack", choices=("none", "uploads", "heads", "disconnects"),
                        default="uploads")
    parser.add_argument("--sockets", type=int, default=None)
    parser.add_argument("--sources", type=int, default=1, help="attacking addresses")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    sources = [f"127.0.0.{2 + k}" for k in range(args.sources)]
    tries = max(1, int(args.seconds / 0.5))
    if args.attack == "disconnects":
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                abandon_uploads(args.url, 5, sources[0])
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        result = probe(args.url, tries)
        stop.set()
        thread.join(30)
    elif args.attack == "none":
        result = probe(args.url, tries)
    else:
        payload = (stalled_upload if args.attack == "uploads" else unfinished_head)(args.url)
        count = args.sockets or (32 if args.attack == "uploads" else 1100)
        with Attacker(args.url, count, payload, sources, trickle_s=5.0) as attacker:
            time.sleep(2)
            result = probe(args.url, tries)
            held = len(attacker.sockets)
        print(json.dumps({"held_at_end": held, "opened": attacker.opened,
                          "dropped": attacker.dropped, "failed_connects": attacker.failed}))
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
