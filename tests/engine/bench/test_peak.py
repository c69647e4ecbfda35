"""The machine's float32 peak (an FMA loop in Numba) and each layer's share of it in
`convnet-demo bench`; tiny durations, no timing claims."""

import json
import math

import numba

from engine.bench.peak import measure_peak, vector_lanes
from engine.cli.main import main


def test_the_peak_is_a_positive_finite_rate_per_thread_count_and_threads_are_restored():
    before = numba.get_num_threads()
    counts = (1, numba.config.NUMBA_NUM_THREADS)
    peak = measure_peak(counts, seconds=0.01)
    assert set(peak["gflops"]) == {str(n) for n in counts}
    for rate in peak["gflops"].values():
        assert rate > 0 and math.isfinite(rate)
    assert peak["vector_bits"] in (128, 256, 512, None)
    lanes = peak["vector_bits"] // 32 if peak["vector_bits"] else vector_lanes()
    assert peak["lanes"] == peak["accumulators"] * lanes  # the width LLVM really used
    assert numba.get_num_threads() == before


def bench(capsys, *extra):
    code = main(["bench", "--net", "cifar_small", "--batch", "2", "--inference-batch", "1",
                 "--seconds", "0.05", "--no-torch", "--no-numpy", "--threads", "1", *extra])
    assert code == 0
    return capsys.readouterr().out


def test_the_json_report_carries_the_peak_and_every_layers_share_of_it(capsys):
    report = json.loads(bench(capsys, "--json"))
    peak = report["machine"]["peak"]["gflops"]
    assert list(peak) == ["1"] and peak["1"] > 0
    layers = report["layers"]
    assert layers["peak_gflops"] == peak["1"]
    conv = layers["rows"][1]
    assert conv["layer"].startswith("conv")
    assert conv["ours"]["peak_share"] == round(conv["ours"]["gflops"] / peak["1"], 4)
    total = layers["total"]["ours"]
    assert total["peak_share"] == round(total["gflops"] / peak["1"], 4) > 0


def test_the_per_layer_table_prints_the_share_column(capsys):
    lines = bench(capsys).splitlines()
    assert any(line.startswith("peak float32") and "GFLOP/s with 1 thread" in line
               for line in lines)
    head = next(i for i, line in enumerate(lines) if line.startswith("per layer"))
    assert "% peak" in lines[head] and "% peak" in lines[head + 1]
    conv = next(line for line in lines[head + 2:] if " conv " in line)
    gflops, share = (float(v) for v in conv.split()[-2:])
    peak = float(lines[head].split("measured peak (")[1].split()[0])
    assert abs(share - 100 * gflops / peak) <= 0.1  # both printed to one decimal
    total = next(line for line in lines[head:] if line.split()[:1] == ["total"])
    assert float(total.split()[-1]) > 0


def test_runs_grow_to_real_work_even_when_every_parallel_call_waits_on_a_busy_core():
    # A neighbour holding a core delays each parallel call by a time slice however little
    # work it carries; sized by elapsed time alone, the runs stayed tiny and the peak read
    # near 0 GFLOP/s. Sized by the one-thread rate they carry real work.
    import time

    import numpy as np

    from engine.bench.peak import FLOPS_PER_FMA, _best_rate
    lanes, threads, rate = 32, 2, 5.0  # the fake machine: 5 GFLOP/s per thread

    def busy_neighbour_kernel(acc, repeats, mul, add):
        work = FLOPS_PER_FMA * lanes * repeats / (rate * 1e9)  # every thread in parallel
        time.sleep(0.003 + work)

    acc = np.ones((threads, lanes), np.float32)
    measured = _best_rate(busy_neighbour_kernel, acc, lanes, 0.05, per_thread_gflops=rate)
    assert threads * rate * 0.2 < measured < threads * rate


def test_a_winograd_conv_is_marked_in_the_per_layer_table(capsys, tmp_path):
    # 16x16 maps at batch 2: 32 tiles of 4x4 outputs, enough for Winograd
    spec = {"layers": [{"type": "input", "out_sx": 16, "out_sy": 16, "out_depth": 64},
                       {"type": "conv", "sx": 3, "pad": 1, "filters": 64},
                       {"type": "conv", "sx": 3, "pad": 1, "filters": 8},
                       {"type": "softmax", "num_classes": 3}]}
    (tmp_path / "net.json").write_text(json.dumps(spec))
    code = main(["bench", "--net", str(tmp_path / "net.json"), "--batch", "2",
                 "--inference-batch", "1", "--seconds", "0.05", "--no-torch", "--no-numpy",
                 "--threads", "1"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    convs = [line for line in lines if " conv 3x3 " in line]
    assert "conv 3x3 s1 wino" in convs[0] and "wino" not in convs[1]  # 8 filters: direct
    assert any(line.strip().startswith("wino: our conv runs as Winograd") for line in lines)
