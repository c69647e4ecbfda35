"""Decode many images on every core: chunks of (name, path or bytes) go to a process pool.

Pillow spends most of a 32x32 JPEG's time in Python (headers, plugin dispatch), so threads do
not scale; processes do. The pool uses the "spawn" start method: forking a process that runs
server threads or Numba's thread pool can deadlock the child.
Small jobs (the tests' tiny folders) are decoded in this process: a spawned worker costs
about half a second to start.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
from collections.abc import Iterable

import numpy as np

from engine.data.images import decode_images

CHUNK_SIZE = 2500
MAX_WORKERS = 8


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                  # not on Linux
        return os.cpu_count() or 1


def decode_many(items: Iterable[tuple[str, str | bytes]], size: tuple[int, int],
                workers: int | None = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode every (name, path or bytes) item, in order, with a pool when there are many.

    Returns (uint8 (n, h, w, 3), [(index, problem)]); rows of failed images are zeros.
    `items` may be a generator (e.g. reading an archive): chunks go to the pool while the
    rest is still being read.
    """
    workers = min(MAX_WORKERS, available_cpus()) if workers is None else workers
    iterator = iter(items)
    first = _take(iterator, CHUNK_SIZE)
    if len(first) < CHUNK_SIZE or workers <= 1:
        chunks = [decode_images(first, size)]
        while chunk := _take(iterator, CHUNK_SIZE):
            chunks.append(decode_images(chunk, size))
        return _join(chunks, size)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
    try:
        jobs = [(first, pool.submit(decode_images, first, size))]
        while chunk := _take(iterator, CHUNK_SIZE):
            jobs.append((chunk, _submit(pool, chunk, size)))
        return _join([_result(chunk, future, size) for chunk, future in jobs], size)
    finally:
        # On Ctrl-C (or an error reading the archive) drop the chunks not started yet.
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(pool, chunk, size):
    try:
        return pool.submit(decode_images, chunk, size)
    except concurrent.futures.process.BrokenProcessPool:
        return None


def _result(chunk, future, size):
    """A worker's result; if the pool could not run (a spawned child cannot re-import a main
    module read from stdin, say) the chunk is decoded here instead: slower, never fatal."""
    if future is not None:
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool:
            pass
    return decode_images(chunk, size)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which cancels them (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _take(iterator, count: int) -> list:
    chunk = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == count:
            break
    return chunk


def _join(chunks, size) -> tuple[np.ndarray, list[tuple[int, str]]]:
    total = sum(len(images) for images, _ in chunks)
    images = np.empty((total, size[0], size[1], 3), dtype=np.uint8)
    problems = []
    start = 0
    for chunk_images, chunk_problems in chunks:
        images[start:start + len(chunk_images)] = chunk_images
        problems.extend((start + index, message) for index, message in chunk_problems)
        start += len(chunk_images)
    return images, problems
