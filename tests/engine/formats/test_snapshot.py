"""Snapshots: exact round trips, refusal of anything corrupt or mismatched, durable saves."""

import base64
import contextlib
import json
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.layers.base import Context
from engine.optim import Optimizer
from engine.formats.snapshot import (FORMAT, VERSION, SnapshotError, dumps, load_snapshot, loads,
                                     save_snapshot, snapshot_to_json)
from tests.builders import BN_LAYERS, REPO, TINY_LAYERS, tiny_net


@pytest.fixture
def no_pickle(monkeypatch):
    """Reading a snapshot never unpickles. (Only around the reading: Numba's own cache of
    compiled kernels is pickled, and a first forward pass may read it.)"""
    @contextlib.contextmanager
    def guard():
        def refuse(*args, **kwargs):
            raise AssertionError("a snapshot was unpickled")
        with monkeypatch.context() as patch:
            for name in ("load", "loads", "Unpickler"):
                patch.setattr(pickle, name, refuse)
            yield
    return guard


def trained_bn_net(rng):
    """A batch-norm net whose running statistics and weights have moved off their init."""
    net = tiny_net(BN_LAYERS, seed=1)
    grads = net.new_grads()
    ctx = Context(training=True)
    optimizer = Optimizer(net.named_params(), method="adam", learning_rate=0.01)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
        net.zero_grads(grads)
        net.loss_and_grads(x, np.array([0, 1, 2, 1]), grads, ctx)
        optimizer.step(net.named_grads(grads))
    return net, optimizer


def full_kwargs(optimizer):
    return dict(optimizer_state=optimizer.state_dict(), step=3,
                preprocess={"mean": [120.0, 121.5, 122.0], "std": [60.0, 61.0, 62.5]},
                classes=["cat", "dog", "frog"],
                metrics={"test": {"accuracy": 0.5}, "cm": np.eye(3)},
                meta={"examples_seen": 12})


def full_doc(rng):
    net, optimizer = trained_bn_net(rng)
    return net, snapshot_to_json(net, **full_kwargs(optimizer))


def test_round_trip_is_bitwise_and_predicts_identically(tmp_path, rng, no_pickle):
    net, optimizer = trained_bn_net(rng)
    path = tmp_path / "run.snapshot.json"
    save_snapshot(path, net, **full_kwargs(optimizer))
    with no_pickle():
        snap = load_snapshot(path)
    for name, arr, _ in net.named_params():
        assert snap.params[name].dtype == arr.dtype and np.array_equal(snap.params[name], arr)
    for name, arr in net.named_buffers():
        assert np.array_equal(snap.buffers[name], arr) and np.any(arr != 0)
    assert snap.spec == net.spec and snap.step == 3 and snap.classes == ["cat", "dog", "frog"]
    assert snap.preprocess == {"mean": [120.0, 121.5, 122.0], "std": [60.0, 61.0, 62.5]}
    assert snap.meta == {"examples_seen": 12} and np.array_equal(snap.metrics["cm"], np.eye(3))
    state = snap.optimizer
    assert state["t"] == 3 and state["hyperparams"]["method"] == "adam"
    probe = Optimizer(net.named_params(), method="adam")
    probe.load_state_dict(state)                       # the optimizer state is usable as is
    x = rng.standard_normal((5, 3, 32, 32)).astype(np.float32)
    rebuilt = snap.build_net()
    assert np.array_equal(rebuilt.predict(x), net.predict(x))
    # And a second save of the loaded snapshot writes the very same bytes.
    again = snapshot_to_json(rebuilt, optimizer_state=state, step=3, preprocess=snap.preprocess,
                             classes=snap.classes, metrics=snap.metrics, meta=snap.meta)
    assert dumps(again) == path.read_bytes()


def test_the_file_is_plain_versioned_json_and_keeps_the_net_name(tmp_path):
    from engine.presets import load_preset
    from engine.net import Net
    net = Net(load_preset("convnetjs"))
    path = tmp_path / "a.json"
    save_snapshot(path, net)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == VERSION
    assert set(doc["params"]["1.w"]) == {"dtype", "shape", "data"}
    assert load_snapshot(path).spec.name == "convnetjs"


def _corrupt(doc, path, value):
    """Set doc[path[0]][path[1]]... = value (a copy)."""
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _encoded(arr):
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()


@pytest.mark.parametrize("path, value, message", [
    (("version",), 2, "version 2"),
    (("version",), "1", "version '1'"),
    (("format",), "something-else", "not a convnet-demo snapshot"),
    (("spec",), [{"type": "input"}], "spec:"),
    (("params", "1.w", "data"), "***", "not valid base64"),
    (("params", "1.w", "data"), _encoded(np.zeros(3, np.float32)), "bytes of data"),
    (("params", "1.w", "shape"), [4, 3, 4, 5], "bytes of data"),
    (("params", "1.w", "dtype"), "object", "dtype 'object'"),
    (("params", "1.w", "dtype"), "int32", "not a float type"),
    (("params", "1.w"), {"dtype": "float32", "shape": [2 ** 32, 2 ** 32], "data": ""},
     "bytes of data"),
    (("params", "1.w", "shape"), [-1], "non-negative"),
    (("params", "1.w"), [1, 2], "array object"),
    (("params", "9.w"), {"dtype": "float32", "shape": [1], "data": _encoded(np.zeros(1,
                                                                                    np.float32))},
     "do not belong"),
    (("buffers", "2.running_var", "data"), _encoded(np.array([1, np.nan, 1, 1], np.float32)),
     "NaN or infinite"),
    (("step",), True, "step"),
    (("step",), -1, "step"),
    (("preprocess",), {"mean": [0, 0], "std": [1, 1, 1]}, "preprocess.mean"),
    (("preprocess",), {"mean": [0, 0, 0], "std": [1, 0, 1]}, "positive"),
    (("classes",), ["a", 3], "classes"),
    (("classes",), ["a", "b"], "2 names for a net with 3 outputs"),
    (("optimizer",), [1], "optimizer"),
])
def test_corrupt_snapshots_are_refused_naming_the_part(rng, path, value, message, no_pickle):
    _, doc = full_doc(rng)
    with pytest.raises(SnapshotError) as info, no_pickle():
        loads(dumps(_corrupt(doc, path, value)))
    assert message in str(info.value)


def test_missing_parts_truncation_nan_and_other_formats_are_refused(tmp_path, rng):
    _, doc = full_doc(rng)
    del doc["params"]["1.w"]
    with pytest.raises(SnapshotError, match="missing 1.w"):
        loads(dumps(doc))
    _, doc = full_doc(rng)
    data = dumps(doc)
    with pytest.raises(SnapshotError, match="not valid JSON"):
        loads(data[: len(data) // 2])
    with pytest.raises(SnapshotError, match="NaN is not allowed"):
        loads(data.replace(b'"step":3', b'"step":NaN'))
    with pytest.raises(SnapshotError, match="ConvNetJS"):
        loads(json.dumps({"layers": [{"layer_type": "input"}]}))
    with pytest.raises(SnapshotError, match="newer convnet-demo"):
        loads(data.replace(b'"version":1', b'"version":7'))
    with pytest.raises(SnapshotError, match="cannot read"):
        load_snapshot(tmp_path / "nothing-here.json")
    (tmp_path / "bad.json").write_bytes(b"\x00\xff garbage")
    with pytest.raises(SnapshotError, match="bad.json"):
        load_snapshot(tmp_path / "bad.json")


def test_non_finite_figures_in_metrics_are_saved_as_null(tmp_path):
    path = tmp_path / "a.json"
    save_snapshot(path, tiny_net(), metrics={"loss": float("nan"), "rate": np.float32("inf")},
                  meta={"wall_seconds": float("inf")})
    snap = load_snapshot(path)
    assert snap.metrics == {"loss": None, "rate": None} and snap.meta == {"wall_seconds": None}


def test_a_snapshot_for_another_spec_is_refused(rng):
    _, doc = full_doc(rng)
    other = tiny_net(TINY_LAYERS)
    doc["spec"] = other.spec.to_json()                  # weights of one net, spec of another
    with pytest.raises(SnapshotError, match="params"):
        loads(dumps(doc))


# A process that saves snapshots in a loop, alternating two nets, printing once the first
# file is complete; the test kills it with SIGKILL at a random moment.
SAVER = """
import sys
import numpy as np
from engine.net import Net
from engine.formats.snapshot import save_snapshot
from tests.builders import TINY_LAYERS, tiny_spec
layers = [dict(l) for l in TINY_LAYERS]
layers[3] = {"type": "fc", "num_neurons": 256, "activation": "relu"}   # ~0.6 MB files
spec = tiny_spec(layers)
nets = [Net(spec, rng=np.random.default_rng(seed)) for seed in (1, 2)]
path = sys.argv[1]
save_snapshot(path, nets[0], step=1)
print("ready", flush=True)
i = 0
while True:
    i += 1
    save_snapshot(path, nets[i % 2], step=1 + i % 2)
"""


def test_kill_9_during_saves_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "run.snapshot.json"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    chance = random.Random(1234)
    steps = set()
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(chance.uniform(0.0, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        snap = load_snapshot(path)                        # parses and validates every array
        steps.add(snap.step)
        assert snap.step in (1, 2)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in (path.name, script.name)]
    assert all(name.startswith(f".{path.name}.") for name in leftovers)  # only temp files


def test_version_true_unknown_keys_and_huge_numbers_are_refused_naming_the_field(rng):
    _, doc = full_doc(rng)
    for path, value, field in ((("version",), True, "version"),
                               (("extra",), 1, "\"extra\""),
                               (("step",), 10**400, "step"),
                               (("step",), 3.0, "step"),
                               (("meta", "epoch"), 10**400, "meta.epoch"),
                               (("meta", "examples_seen"), 1.5, "meta.examples_seen"),
                               (("meta", "wall_seconds"), -1, "meta.wall_seconds"),
                               (("preprocess", "mean"), [10**400, 0, 0], "preprocess.mean"),
                               (("optimizer", "t"), 10**400, "optimizer.t"),
                               (("optimizer", "hyperparams", "learning_rate"), 10**400,
                                "optimizer.learning_rate"),
                               (("params", "1.w", "shape"), [10**400], "params.1.w"),
                               (("spec",), [{"type": "input", "out_sx": 3.0}], "spec")):
        with pytest.raises(SnapshotError) as info:
            loads(dumps(_corrupt(doc, path, value)))
        assert info.value.field == field, (path, str(info.value))
    with pytest.raises(SnapshotError, match="not valid JSON: Exceeds the limit"):
        loads(dumps(doc).replace(b'"step":3', b'"step":1' + b"0" * 4300))
    nested = _corrupt(doc, ("metrics", "deep"), json.loads("[" * 500 + "]" * 500))
    with pytest.raises(SnapshotError, match="nested more than"):
        loads(dumps(nested))
    assert loads(dumps(_corrupt(doc, ("meta", "epoch"), None))).meta["epoch"] is None


def test_weights_that_overflow_float32_are_refused(rng):
    # Finite in float64, inf in the float32 a net computes in.
    _, doc = full_doc(rng)
    big = np.full((4, 3, 4, 4), 1e39)
    w64 = {"dtype": "float64", "shape": list(big.shape), "data": _encoded(big)}
    with pytest.raises(SnapshotError, match="NaN or infinite values") as info:
        loads(dumps(_corrupt(doc, ("params", "1.w"), w64)))
    assert info.value.field == "params.1.w"
    slot = {"__array__": w64}
    with pytest.raises(SnapshotError, match="NaN or infinite") as info:
        loads(dumps(_corrupt(doc, ("optimizer", "state", "1.w", "first_moment"), slot)))
    assert info.value.field == "optimizer.state.1.w.first_moment"
    fine = {"dtype": "float64", "shape": list(big.shape), "data": _encoded(big * 1e-39)}
    assert loads(dumps(_corrupt(doc, ("params", "1.w"), fine))).params["1.w"].dtype == np.float64


@pytest.mark.parametrize("pre, ok", [
    ({"mean": [127.5] * 3, "std": [255.0] * 3}, True),     # ConvNetJS: pixel/255 - 0.5
    ({"mean": [120.7, 122.1, 113.9], "std": [63.0, 62.1, 66.7]}, True),
    ({"mean": [0, 0, 0], "std": [1, 1, 1]}, True),           # raw pixels
    ({"mean": [0.0] * 3, "std": [1e-300] * 3}, False),
    ({"mean": [1e308] * 3, "std": [60.0] * 3}, False),
    ({"mean": [0.0] * 3, "std": [1e5] * 3}, False),
    ({"mean": [0.0] * 3, "std": [60.0] * 3, "extra": 1}, False),
])
def test_pixel_statistics_must_lie_in_a_sane_range(rng, pre, ok):
    _, doc = full_doc(rng)
    if ok:
        assert loads(dumps(_corrupt(doc, ("preprocess",), pre))).preprocess["mean"] == [
            float(v) for v in pre["mean"]]
    else:
        with pytest.raises(SnapshotError, match="preprocess") as info:
            loads(dumps(_corrupt(doc, ("preprocess",), pre)))
        assert info.value.field.startswith("preprocess")


def test_a_tiny_snapshot_that_declares_a_huge_net_is_refused_before_allocating_it():
    import tracemalloc
    # 29M parameters declared in a few hundred bytes (the weights are not there).
    doc = {"format": FORMAT, "version": VERSION,
           "spec": [{"type": "input", "out_sx": 32, "out_sy": 32, "out_depth": 3},
                    {"type": "fc", "num_neurons": 9400}, {"type": "softmax",
                                                          "num_classes": 10}],
           "params": {}, "buffers": {}}
    data = dumps(doc)
    assert len(data) < 300
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(SnapshotError, match="params: missing") as info:
            loads(data)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6 and seconds < 1.0, (peak, seconds)
    assert info.value.field == "params.1.w"
