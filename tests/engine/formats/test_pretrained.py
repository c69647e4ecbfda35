"""Finding a net to classify with: shipped names, snapshot files, ConvNetJS files."""

import json

import numpy as np
import pytest

from engine.formats import pretrained
from engine.data import CIFAR10_CLASSES
from engine.formats.pretrained import (available_pretrained, load_pretrained, parse_snapshot_bytes,
                                       resolve_snapshot)
from engine.formats.snapshot import SnapshotError, dumps, save_snapshot, snapshot_to_json
from tests.builders import tiny_net
from tests.naive.convnetjs import make_net_json

TEN_WAY = [{"type": "input", "out_sx": 8, "out_sy": 8, "out_depth": 3},
           {"type": "conv", "sx": 3, "filters": 2, "pad": 1, "activation": "relu"},
           {"type": "softmax", "num_classes": 10}]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A pretrained_nets folder the test fills."""
    folder = tmp_path / "pretrained_nets"
    folder.mkdir()
    monkeypatch.setattr(pretrained, "pretrained_folder", lambda: folder)
    return folder


def test_a_snapshot_file_and_a_convnetjs_file_are_told_apart_by_content(tmp_path, rng):
    ours = tmp_path / "ours.json"
    save_snapshot(ours, tiny_net(), classes=["cat", "dog", "frog"])
    assert resolve_snapshot(str(ours)).classes == ["cat", "dog", "frog"]
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps(make_net_json(TEN_WAY, rng)))
    snapshot = resolve_snapshot(str(theirs))
    assert snapshot.meta["imported_from"] == "convnetjs"
    assert snapshot.classes == list(CIFAR10_CLASSES)       # ConvNetJS's CIFAR-10 demo order


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b'{"layers": [{"layer_type": "nonsense"}]}', "not supported"),
    (b'{"format": "convnet-demo-snapshot", "version": 99}', "newer convnet-demo"),
    (b"[1, 2]", "a snapshot is a JSON object"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SnapshotError) as info:
        resolve_snapshot(str(path))
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_a_missing_file(tmp_path):
    with pytest.raises(SnapshotError, match="cannot read .*missing.json"):
        resolve_snapshot(str(tmp_path / "missing.json"))


def test_shipped_nets_by_name_and_the_best_one_by_default(shipped, rng):
    assert available_pretrained() == []
    with pytest.raises(SnapshotError, match="not in this installation; shipped: none"):
        resolve_snapshot("pretrained")
    (shipped / "convnetjs.json").write_text(json.dumps(make_net_json(TEN_WAY, rng)))
    assert available_pretrained() == ["convnetjs"]
    assert resolve_snapshot("pretrained").meta["imported_from"] == "convnetjs"
    net = tiny_net(classes=10)
    (shipped / "cifar_resnet.json").write_bytes(dumps(snapshot_to_json(net, step=7)))
    assert available_pretrained() == ["cifar_resnet", "convnetjs"]
    assert resolve_snapshot("pretrained").step == 7
    assert resolve_snapshot("pretrained:convnetjs").meta["imported_from"] == "convnetjs"
    with pytest.raises(SnapshotError, match="no pretrained net '../etc/passwd'"):
        resolve_snapshot("pretrained:../etc/passwd")     # names are looked up, never joined
    assert load_pretrained("cifar_resnet").step == 7


def test_parse_snapshot_bytes_keeps_our_class_names(rng):
    net = tiny_net()
    snap = parse_snapshot_bytes(dumps(snapshot_to_json(net, classes=["a", "b", "c"])))
    assert snap.classes == ["a", "b", "c"]
    assert np.array_equal(snap.params["1.w"], net.named_params()[0][1])


# What README.md reports for the shipped files, on the bundled test set (10,000 images): the
# single-pass accuracy this test measures, and the figure the file records (the speedrun's
# with its flip-and-translate test-time augmentation: six passes, too slow to repeat here).
SHIPPED_ACCURACY = {"cifar_resnet": (0.8592, 0.8592), "convnetjs": (0.7311, 0.7311),
                    "speedrun": (0.8991, 0.9083)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED_ACCURACY))
def test_the_shipped_nets_reach_their_readme_accuracy(name, tmp_path_factory):
    from engine.data import open_source
    from engine.train.evaluation import evaluate
    from engine.data.normalize import Normalization

    assert name in available_pretrained(), f"engine/formats/pretrained_nets lacks {name}"
    snapshot = load_pretrained(name)
    dataset = open_source(cache_dir=tmp_path_factory.getbasetemp() / "bundled-cache",
                          validation=0)
    result = evaluate(snapshot.build_net(), dataset.test,
                      Normalization.from_dict(snapshot.preprocess))
    assert result["images"] == 10000
    single, recorded = SHIPPED_ACCURACY[name]
    # Summation order (threads, batch) may move an image or two.
    assert abs(result["accuracy"] - single) <= 0.0005
    assert snapshot.metrics["test"]["accuracy"] == pytest.approx(recorded)
