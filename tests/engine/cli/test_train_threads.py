"""`convnet-demo train` on a busy machine: with another program keeping a core busy, the
default (the thread count measured while training, engine/threads.py) trains within 70% of
the speed of `--threads 1`, where all cores used to train many times slower (95 against 2,150
images/s in the issue that asked for it; 58 against 1,932 on this machine)."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from tests.builders import INPUT, cli_command, cli_env, learnable_folder, write_spec

# The ConvNetJS demo net (engine/presets/convnetjs.json) for the 3 classes of the folder.
CONVNETJS_3 = [INPUT,
               {"type": "conv", "sx": 5, "filters": 16, "stride": 1, "pad": 2,
                "activation": "relu"},
               {"type": "pool", "sx": 2, "stride": 2},
               {"type": "conv", "sx": 5, "filters": 20, "stride": 1, "pad": 2,
                "activation": "relu"},
               {"type": "pool", "sx": 2, "stride": 2},
               {"type": "conv", "sx": 5, "filters": 20, "stride": 1, "pad": 2,
                "activation": "relu"},
               {"type": "pool", "sx": 2, "stride": 2},
               {"type": "softmax", "num_classes": 3}]
SECONDS, TEST_EVERY = 24, 40


def _busy_process_on_one_core():
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("one core available: a busy neighbour on one core cannot be separated "
                    "from the training process")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(busy.pid, {cores[-1]})
    return busy


def _train(tmp_path, name: str, *threads: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command("train", "--net", str(tmp_path / "net.json"), "--data",
                    str(tmp_path / "photos"), "--minutes", str(SECONDS / 60), "--batch-size",
                    "16", "--test-every", str(TEST_EVERY), "--json-log",
                    str(tmp_path / f"{name}.jsonl"), "--out",
                    str(tmp_path / f"{name}.snapshot.json"), *threads),
        env=cli_env(tmp_path / "cache"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _log(tmp_path, name: str, process: subprocess.Popen) -> list[dict]:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_train_picks_a_thread_count_that_survives_a_busy_core(tmp_path):
    learnable_folder(tmp_path / "photos")
    write_spec(tmp_path / "net.json", CONVNETJS_3)
    # Decode the folder into the cache first, so neither run below starts by doing it.
    warm = _train(tmp_path, "warm", "--threads", "1")
    warm.kill()
    warm.communicate()
    busy = _busy_process_on_one_core()
    try:
        # Both at once, for the same time: this shared machine's other load moves a run's
        # speed by +-30% from one half-minute to the next, and at once both meet the same.
        processes = {"one": _train(tmp_path, "one", "--threads", "1"),
                     "tuned": _train(tmp_path, "tuned")}
        logs = {name: _log(tmp_path, name, p) for name, p in processes.items()}
    finally:
        busy.kill()
        busy.wait()
    # Training images/s at each test evaluation (the mean of the 50 steps before it): the
    # first window holds the tuner's trial, the last line repeats the final evaluation's.
    rates = {name: [line["images_per_s"] for line in log[1:-1]] for name, log in logs.items()}
    assert len(rates["one"]) >= 3 and len(rates["tuned"]) >= 3, logs
    single, tuned = statistics.median(rates["one"]), statistics.median(rates["tuned"])
    assert tuned >= 0.7 * single, (tuned, single, rates)
    # Every line says which count it ran with. Not which one: with three programs on two
    # cores, a slow patch can start a new trial (two threads for a second) and CI saw one.
    counts = [line["threads"] for line in logs["tuned"]]
    assert set(counts) <= {1, os.cpu_count()} and all(isinstance(n, int) for n in counts), counts
    assert all(line["threads"] == 1 for line in logs["one"]), logs["one"]
