"""`convnet-demo bench` (engine benchmark): a smoke test of the JSON report; no timing claims."""

import json

import pytest

from engine.cli.main import main

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False


def run_bench(capsys, *extra):
    code = main(["bench", "--net", "cifar_small", "--batch", "2", "--inference-batch", "1",
                 "--seconds", "0.05", "--json", *extra])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_bench_json_report(capsys):
    report = run_bench(capsys)
    impls = ["ours"] + (["torch"] if HAVE_TORCH else []) + ["numpy"]
    assert report["implementations"] == impls
    assert report["command"].startswith("convnet-demo bench --net cifar_small --batch 2")
    # No --threads: measured first (all cores, then one), every implementation runs with it.
    from engine.threads import machine_threads
    threads = report["threads"]
    assert report["machine"]["cpu"] and report["machine"]["threads"] == threads["count"]
    assert "--threads" not in report["command"]
    if machine_threads() > 1:
        assert threads["tuned"] and set(threads["measured_images_per_s"]) == {
            str(machine_threads()), "1"}
        rates = threads["measured_images_per_s"]
        assert threads["count"] == int(max(rates, key=rates.get))
    assert report["net"]["flops_per_image"] > 0 and report["net"]["params"] > 0
    for kind, batch in (("training", 2), ("inference", 1)):
        (row,) = report[kind]
        assert row["batch"] == batch
        for impl in impls:
            assert row["images_per_s"][impl] > 0
            assert row["gflops"][impl] > 0
        for other in impls[1:]:
            assert row["ratios"][f"ours/{other}"] > 0
    layers = report["layers"]
    assert layers["batch"] == 2
    assert [r["index"] for r in layers["rows"]] == list(range(len(layers["rows"])))
    conv = layers["rows"][1]
    assert conv["layer"].startswith("conv") and conv["flops"] > 0
    for impl in impls:
        assert conv[impl]["forward_ms"] > 0 and conv[impl]["gflops"] > 0
        assert layers["total"][impl]["ms"] > 0
    losses = report["check_first_loss"]
    for impl in impls:  # same weights, same batch: the same loss
        assert losses[impl] == pytest.approx(losses["ours"], rel=1e-4)


def test_bench_without_torch_and_numpy(capsys):
    report = run_bench(capsys, "--no-torch", "--no-numpy", "--threads", "1")
    assert report["implementations"] == ["ours"]
    assert report["training"][0]["ratios"] == {}
    # An explicit --threads wins: no measuring, and the report says so.
    assert report["threads"] == {"count": 1, "tuned": False, "measured_images_per_s": {}}
    assert report["machine"]["threads"] == 1 and "--threads 1" in report["command"]


def test_bench_says_which_thread_count_it_measured_with(capsys):
    code = main(["bench", "--net", "cifar_small", "--batch", "2", "--inference-batch", "1",
                 "--seconds", "0.05", "--no-torch", "--no-numpy"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("threads: "))
    from engine.threads import machine_threads
    if machine_threads() > 1:
        assert "measured: " in line and "images/s" in line and "--threads T fixes it" in line


def test_bench_refuses_a_bad_batch(capsys):
    assert main(["bench", "--batch", "0"]) == 2
    assert "batch sizes" in capsys.readouterr().err


def test_the_3x3_bench_net_of_the_readme_is_a_valid_spec(capsys):
    # README's speed section runs `bench --net engine/bench/nets/net3x3.json`.
    from pathlib import Path

    import engine
    from engine.spec.net_spec import parse_spec
    path = Path(engine.__file__).parent / "bench" / "nets" / "net3x3.json"
    spec = parse_spec(json.loads(path.read_text()))
    assert [d["type"] for d in spec.layers].count("conv") == 5
    assert spec.input_shape == (3, 32, 32)


def test_the_airbench94_bench_net_is_a_valid_spec_of_237_mflop_per_image():
    # `bench --net engine/bench/nets/airbench94.json`: issue 13's airbench94-shaped net.
    from pathlib import Path

    import engine
    from engine.calculator import summarize
    from engine.spec.net_spec import parse_spec
    path = Path(engine.__file__).parent / "bench" / "nets" / "airbench94.json"
    spec = parse_spec(json.loads(path.read_text()))
    convs = [d for d in spec.layers if d["type"] == "conv"]
    assert [(d["sx"], d["filters"], d["pad_x"]) for d in convs] == [
        (2, 24, 0)] + [(3, f, 1) for f in (64, 64, 256, 256, 256, 256)]
    assert [d["type"] for d in spec.layers].count("batchnorm") == 6
    assert spec.input_shape == (3, 32, 32) and spec.num_outputs == 10
    assert abs(summarize(spec)["flops"] - 237e6) <= 0.05 * 237e6
