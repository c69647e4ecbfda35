"""Presets: the lecture's case studies reproduce the published figures; the CIFAR nets fit the
trainable budget; every preset round-trips."""

import json
from importlib import resources

import pytest

from engine.calculator import summarize
from engine.presets import (PRESETS, TRAINABLE, UnknownPresetError, load_preset,
                            preset_document)
from engine.spec.net_spec import DEFAULT_BUDGET, SpecError, parse_spec

IMAGENET = ("alexnet", "zfnet", "vgg16", "googlenet", "resnet18", "resnet34")


@pytest.fixture(scope="module")
def summaries():
    return {name: summarize(load_preset(name, budget=None)) for name in PRESETS}


def test_every_preset_file_is_listed_and_named_after_itself():
    files = {p.name[:-5] for p in resources.files("engine.presets").iterdir()
             if p.name.endswith(".json")}
    assert files == set(PRESETS)
    for name in PRESETS:
        doc = preset_document(name)
        assert doc["name"] == name and doc["description"] and doc["notes"]


@pytest.mark.parametrize("name", PRESETS)
def test_round_trip(name):
    spec = load_preset(name, budget=None)
    again = parse_spec(json.loads(json.dumps(spec.to_document())), budget=None)
    assert again == spec and again.name == name and again.notes == spec.notes


@pytest.mark.parametrize("name, params", [
    ("lenet5", 61_706), ("alexnet", 62_378_344), ("vgg16", 138_357_544),
    ("googlenet", 6_998_552), ("resnet18", 11_689_512), ("resnet34", 21_797_672),
    ("convnetjs", 22_466),
])
def test_published_parameter_counts(summaries, name, params):
    assert summaries[name]["params"] == params
    assert f"{params:,}" in " ".join(preset_document(name)["notes"]) or name == "convnetjs"


def test_imagenet_presets_end_in_softmax_1000():
    for name in IMAGENET:
        spec = load_preset(name, budget=None)
        assert spec.loss_type == "softmax" and spec.num_classes == 1000
        assert spec.layers[-2]["type"] == "fc" and spec.layers[-2]["num_neurons"] == 1000


def test_alexnet_conv1_and_the_227_input(summaries):
    conv1 = summaries["alexnet"]["layers"][1]
    assert conv1["out_shape"] == [55, 55, 96] and conv1["params"] == 34_944
    assert summaries["alexnet"]["input_shape"] == [227, 227, 3]
    doc = preset_document("alexnet")
    doc["layers"][0].update(out_sx=224, out_sy=224)
    with pytest.raises(SpecError) as info:
        parse_spec(doc, budget=None)
    assert info.value.layer == "1" and "54.25" in str(info.value) and "227" in str(info.value)


def test_zfnet_follows_the_lecture(summaries):
    shapes = [r["out_shape"] for r in summaries["zfnet"]["layers"]
              if r["type"] in ("conv", "pool")]
    assert shapes[0] == [110, 110, 96] and shapes[1] == [55, 55, 96]
    assert [s[2] for s in shapes if s[0] == 13 and s[2] > 256] == [512, 1024, 512]
    assert shapes[-1] == [6, 6, 512]


def test_vgg16_memory_note_is_the_true_sum(summaries):
    vgg = summaries["vgg16"]
    assert vgg["activations"] == 15_237_608
    assert vgg["memory"]["forward_bytes_per_image"] == 60_950_432
    notes = " ".join(vgg["notes"])
    assert "15,237,608" in notes and "60,950,432" in notes and "24M" in notes
    conv_rows = [r for r in vgg["layers"] if r["type"] == "conv"]
    assert conv_rows[0]["activations"] == 224 * 224 * 64 and len(conv_rows) == 13


def test_resnet_and_googlenet_shapes(summaries):
    r18 = summaries["resnet18"]["layers"]
    assert r18[1]["out_shape"] == [112, 112, 64] and r18[4]["out_shape"] == [56, 56, 64]
    assert [r["out_shape"] for r in r18 if r["type"] == "global_avg_pool"] == [[1, 1, 512]]
    res = [r for r in r18 if r["type"] == "residual"]
    assert [r["out_shape"][0] for r in res] == [56, 56, 28, 28, 14, 14, 7, 7]
    cats = [r for r in summaries["googlenet"]["layers"] if r["type"] == "concat"]
    assert len(cats) == 9 and cats[0]["out_shape"] == [28, 28, 256]
    assert cats[-1]["out_shape"] == [7, 7, 1024]
    assert "6,624,904" in " ".join(summaries["googlenet"]["notes"])


def test_trainable_presets_fit_the_default_budget_and_cifar(summaries):
    for name in TRAINABLE:
        spec = load_preset(name)
        assert spec.input_shape == (3, 32, 32) and spec.num_classes == 10
    small, resnet = summaries["cifar_small"], summaries["cifar_resnet"]
    assert small["flops"] < 20e6 and resnet["flops"] < 80e6  # a few minutes an epoch
    kinds = {r["type"] for r in resnet["layers"]}
    assert {"batchnorm", "residual", "global_avg_pool"} <= kinds
    for name in IMAGENET:
        if summaries[name]["params"] > DEFAULT_BUDGET.max_params or \
                summaries[name]["flops"] > DEFAULT_BUDGET.max_flops:
            with pytest.raises(SpecError):
                load_preset(name)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UnknownPresetError, match="presets: convnetjs, cifar_small"):
        preset_document("../spec")


def test_cifar_speedrun_is_airbench94s_net_with_gelu_and_the_whitening_conv(summaries):
    from engine.spec.net_spec import load_spec_text
    bench = load_spec_text(resources.files("engine.bench").joinpath("nets/airbench94.json")
                           .read_bytes())
    spec = load_preset("cifar_speedrun")
    # airbench94's gelu after the whitening conv and the head's scale by 1/9 (in front of the
    # fc) change no shape and cost next to nothing; the bench net leaves them out
    assert [d["type"] for d in spec.layers[1:4]] == ["conv", "gelu", "conv"]
    layers = [d for i, d in enumerate(spec.layers) if d["type"] != "scale" and i != 2]
    assert [d["type"] for d in layers] == [d["type"] for d in bench.layers]
    assert [d["out_shape"] for d in layers] == [d["out_shape"] for d in bench.layers]
    assert spec.layers[1]["init"] == "whiten" and spec.layers[1]["filters"] == 24
    assert spec.layers[1]["bias_epochs"] == 3
    assert spec.layers[-1]["label_smoothing"] == 0.2
    # airbench94's head: no bias, the scores times 1/9
    assert [d["type"] for d in spec.layers[-3:]] == ["scale", "fc", "softmax"]
    assert spec.layers[-3]["factor"] == pytest.approx(1 / 9)
    assert spec.layers[-2]["bias"] is False
    # airbench94's batch norms: gamma fixed at 1, biases at 64x the rate and decayed,
    # momentum 0.6 in its convention (1 - 0.4 in ours, torch's), eps 1e-12
    norms = [d for d in spec.layers if d["type"] == "batchnorm"]
    assert len(norms) == 6
    for d in norms:
        assert (d["scale"], d["lr_mul"], d["l2_decay_mul"]) == (False, 64.0, 1.0)
        assert (d["momentum"], d["eps"]) == (0.4, 1e-12)
    assert summaries["cifar_speedrun"]["params"] == 1_972_792
    assert "1,972,792" in " ".join(preset_document("cifar_speedrun")["notes"])


def test_cifar_speedrun_settings_are_airbench94s_converted_and_fit_the_budget():
    from engine.optim import Hyperparams
    from engine.presets import training_defaults
    from engine.train.options import DEFAULT_TRAIN_BUDGET, check_budget
    hp = Hyperparams.from_dict(training_defaults("cifar_speedrun"))
    # airbench94: torch lr 11.5 / S on a loss summed over the batch, S = 1024 (1 + 1/(1 - mu))
    # and weight decay 0.0153 * 1024 / S / lr on that sum's gradient
    mu, batch = 0.85, hp.batch_size
    scale = 1024 * (1 + 1 / (1 - mu))
    assert (hp.method, hp.momentum) == ("nesterov", mu)
    assert hp.learning_rate == pytest.approx(11.5 / scale * batch)
    torch_lr, torch_wd = 11.5 / scale, 0.0153 * 1024 / scale / (11.5 / scale)
    # the same decay step: lr * l2 * w (ours) == torch_lr * torch_wd * w
    assert hp.learning_rate * hp.l2_decay == pytest.approx(torch_lr * torch_wd * batch / 1024,
                                                           rel=2e-3)
    assert hp.lookahead == pytest.approx(0.95 ** 5, abs=1e-3)
    assert hp.lookahead_every * batch == 5 * 1024
    assert (hp.schedule, hp.min_lr_factor) == ("linear", 0.07)
    assert hp.warmup_from == 0.2                 # airbench94's triangle starts at 0.2
    check_budget(load_preset("cifar_speedrun"), batch, DEFAULT_TRAIN_BUDGET, "net")


def test_preset_training_options_are_valid_options():
    from engine.presets import TRAINING_OPTIONS, training_options
    from engine.train.options import TrainOptions
    assert set(TRAINING_OPTIONS) <= set(TRAINABLE)
    for name in TRAINING_OPTIONS:
        TrainOptions(**training_options(name)).check()
    assert training_options("cifar_speedrun")["flip"] == "alternate"
    assert training_options("cifar_resnet") == training_options(None) == {}
