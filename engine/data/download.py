"""Fetching a file over HTTP(S): verified, atomic, bounded in time, with a progress line.

The file is written to a temp file in the destination's directory, its md5 checked, and only
then renamed into place; any failure (no network, a timeout, a wrong checksum, Ctrl-C)
removes the temp file, so a half download is never mistaken for the real thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engine.data.cache import atomic_output
from engine.data.images import DataError

DEFAULT_TIMEOUT_S = 10.0                    # to connect, and for any single read
Progress = Callable[[int, "int | None"], None]


class DownloadError(DataError):
    """The file could not be fetched or was not the expected file."""


class StderrProgress:
    """A one-line progress bar on stderr: redrawn in place on a terminal, else every 10%."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._started = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if self.interactive:
            if now - self._last_draw < 0.2 and not finished:
                return
            end = "\n" if finished else ""
            print(f"\r{self._describe(done, total, now)}", end=end, file=self.stream,
                  flush=True)
        else:
            tenth = done * 10 // total if total else done >> 24   # every 16 MiB if unsized
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            print(self._describe(done, total, now), file=self.stream, flush=True)
        self._last_draw = now

    def _describe(self, done: int, total: int | None, now: float) -> str:
        rate = done / max(now - self._started, 1e-3) / 1e6
        if total:
            return (f"{self.label}: {100 * done // total:3d}% {done / 1e6:.1f}/"
                    f"{total / 1e6:.1f} MB {rate:.1f} MB/s")
        return f"{self.label}: {done / 1e6:.1f} MB {rate:.1f} MB/s"


def download_file(url: str, destination: Path, md5: str, *,
                  timeout: float = DEFAULT_TIMEOUT_S,
                  progress: Progress | None = None) -> Path:
    """Download url to destination (atomically) and check its md5; DownloadError on failure."""
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http:// and https:// downloads are supported")
    destination.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "convnet-demo"})
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                atomic_output(destination) as out:
            total = _content_length(response)
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            if total is not None and done != total:
                raise DownloadError(f"{url}: connection closed after {done:,} of "
                                    f"{total:,} bytes")
            if digest.hexdigest() != md5:
                raise DownloadError(f"{url}: downloaded file has md5 {digest.hexdigest()}, "
                                    f"expected {md5}; it was not kept")
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot connect ({_reason(exc.reason)})") from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"{url}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: download failed ({_reason(exc)})") from None
    return destination


def _content_length(response) -> int | None:
    with contextlib.suppress(TypeError, ValueError):
        return int(response.headers.get("Content-Length"))
    return None


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
