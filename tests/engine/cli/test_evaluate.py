"""`convnet-demo evaluate`: accuracy, per-class accuracy, confusion matrix; text and --json."""

import json
import re

import numpy as np
import pytest

from engine.cli.main import main
from engine.formats.convnetjs import export_convnetjs
from engine.data.cache import CACHE_ENV
from engine.formats.snapshot import load_snapshot, save_snapshot
from tests.builders import learnable_folder, tiny_net, train_snapshot


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(image folder, snapshot file, the trainer that wrote it)"""
    root = tmp_path_factory.mktemp("evaluate")
    photos = learnable_folder(root / "photos")
    trainer = train_snapshot(photos, root / "cache", root / "net.json")
    return photos, root / "net.json", trainer


def evaluate(capsys, *argv):
    code = main(["evaluate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_accuracy_per_class_and_the_confusion_matrix(capsys, trained):
    photos, snapshot, trainer = trained
    code, out, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                              "--json")
    assert code == 0, err
    result = json.loads(out)
    expected = trainer.evaluate_test()
    assert result["accuracy"] == expected["accuracy"] >= 0.9
    assert result["confusion"] == expected["confusion"]
    assert np.array(result["confusion"]).sum(axis=1).tolist() == [10, 10, 10]
    assert set(result["per_class"]) == {"cat", "dog", "frog"} and result["images"] == 30
    assert result["classes"] == ["cat", "dog", "frog"] and result["split"] == "test"


def test_text_report_and_other_splits(capsys, trained):
    photos, snapshot, _ = trained
    code, out, _ = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos))
    assert code == 0
    assert out.startswith("test accuracy: ") and "on 30 images" in out.splitlines()[0]
    assert "per class:" in out and "confusion matrix (rows: true class" in out
    rows = [line.split() for line in out.splitlines()[-3:]]
    assert [row[0] for row in rows] == ["cat", "dog", "frog"]
    assert sum(int(v) for row in rows for v in row[1:]) == 30
    code, out, _ = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                            "--split", "validation", "--json")
    assert code == 0 and json.loads(out)["images"] == 9 and json.loads(out)["split"] == \
        "validation"
    code, out, _ = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                            "--limit", "4", "--json")
    assert code == 0 and json.loads(out)["images"] == 4
    code, _, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                            "--split", "validation", "--validation", "0")
    assert code == 2 and "validation split of this data set is empty" in err


def test_a_convnetjs_export_of_the_net_scores_the_same(capsys, trained, tmp_path):
    photos, snapshot, _ = trained
    snap = load_snapshot(snapshot)
    exported = tmp_path / "convnetjs.json"
    exported.write_text(json.dumps(export_convnetjs(snap.build_net(), snap.preprocess)))
    results = []
    for path in (exported, snapshot):
        code, out, err = evaluate(capsys, "--snapshot", str(path), "--data", str(photos),
                                  "--json")
        assert code == 0, err
        results.append(json.loads(out))
    assert results[0]["confusion"] == results[1]["confusion"]
    assert results[0]["classes"] == ["cat", "dog", "frog"]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.json", "cannot read"),
    (lambda tmp: save_snapshot(tmp / "ten.json", tiny_net(classes=10)) or tmp / "ten.json",
     "the snapshot has 10 classes, the data set 3"),
    (lambda tmp: save_snapshot(tmp / "names.json", tiny_net(), classes=["a", "b", "c"])
     or tmp / "names.json", "the snapshot's classes (a, b, c) are not the data set's"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, trained, tmp_path, make, message):
    photos = trained[0]
    code, _, err = evaluate(capsys, "--snapshot", str(make(tmp_path)), "--data", str(photos))
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


def test_limit_must_be_positive_and_pretrained_may_be_absent(capsys, trained, monkeypatch,
                                                             tmp_path):
    photos, snapshot, _ = trained
    code, _, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                            "--limit", "0")
    assert code == 2 and "--limit must be at least 1" in err
    from engine.formats import pretrained
    monkeypatch.setattr(pretrained, "pretrained_folder", lambda: tmp_path / "none")
    code, _, err = evaluate(capsys, "--data", str(photos))
    assert code == 2 and "not in this installation" in err


def test_progress_and_the_thread_count_go_to_stderr(capsys, trained):
    photos, snapshot, _ = trained
    code, out, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                              "--json", "--threads", "1")
    assert code == 0 and json.loads(out)["images"] == 30, err     # stdout stays the JSON
    lines = err.splitlines()
    assert any(re.fullmatch(r"evaluating the test split: 30/30 images, [\d,]+ img/s, 1 thread",
                            line.strip()) for line in lines), err
    assert "threads: 1 thread (fixed by --threads)" in lines, err
    # By default the count is the tuner's, and the summary says whether it measured.
    code, _, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos))
    assert code == 0
    summary = [line for line in err.splitlines() if line.startswith("threads: ")]
    assert len(summary) == 1 and re.fullmatch(
        r"threads: \d+ threads? \((measured: .*|not measured yet)\)", summary[0]), err


def test_tta_averages_the_mirrored_views_and_says_so(capsys, trained):
    from engine.train.evaluation import evaluate as evaluate_net
    photos, snapshot, trainer = trained
    code, out, err = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                              "--json", "--tta", "flip")
    assert code == 0, err
    result = json.loads(out)
    expected = evaluate_net(trainer.net, trainer.dataset.test, trainer.normalization,
                            tta="flip")
    assert result["tta"] == "flip" and result["confusion"] == expected["confusion"]
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    # (these solid-colour images look the same mirrored: tests/engine/train/test_evaluation.py
    # shows the views count on a net that tells left from right)
    code, out, _ = evaluate(capsys, "--snapshot", str(snapshot), "--data", str(photos),
                            "--tta", "flip_translate")
    assert code == 0 and "(test-time augmentation: flip_translate)" in out.splitlines()[0]
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--snapshot", str(snapshot), "--tta", "sideways"])
    assert info.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
