"""`convnet-demo bench --data`: how long opening a data set takes, from scratch and cached.

From scratch decodes into a fresh temporary cache (deleted afterwards), so the user's own
cache is neither used nor disturbed; the second open reads what the first one wrote.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time

from engine.data.augment import BatchIterator
from engine.data.cache import cache_root
from engine.data.download import StderrProgress
from engine.data.official import ARCHIVE_NAME, OFFICIAL, fetch_archive
from engine.data.sources import open_source


def run_data_bench(args) -> int:
    source = getattr(args, "source", None) or "bundled"
    if source == "official":
        # Time the decoding, not a download: find (or fetch) the archive first.
        source = str(fetch_archive(cache_root(), OFFICIAL,
                                   progress=StderrProgress(f"downloading {ARCHIVE_NAME}")))
    scratch = tempfile.mkdtemp(prefix="convnet-demo-bench-")
    try:
        started = time.perf_counter()
        dataset = open_source(source, cache_dir=scratch)
        from_scratch = time.perf_counter() - started
        started = time.perf_counter()
        dataset = open_source(source, cache_dir=scratch)
        from_cache = time.perf_counter() - started
        batches = BatchIterator(dataset.train, 32, rng=0, augment=True)
        started = time.perf_counter()
        for _ in range(100):
            next(batches)
        batch_ms = (time.perf_counter() - started) * 10
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    images = sum(len(s) for s in (dataset.train, dataset.validation, dataset.test))
    result = {"source": dataset.source.kind, "location": dataset.source.location,
              "images": images, "from_scratch_s": round(from_scratch, 3),
              "from_cache_s": round(from_cache, 3),
              "augmented_batch_of_32_ms": round(batch_ms, 3)}
    if getattr(args, "json", False):
        print(json.dumps(result))
        return 0
    out = sys.stdout
    print(f"data: {result['source']} ({result['location']}), {images:,} images", file=out)
    print(f"  open from scratch (decode + cache): {from_scratch:8.3f} s", file=out)
    print(f"  open from cache:                    {from_cache:8.3f} s", file=out)
    print(f"  one augmented batch of 32:          {batch_ms:8.3f} ms", file=out)
    return 0
