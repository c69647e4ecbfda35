"""`convnet-demo summary`: text and JSON output, --input, and one-line errors (exit 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

REPO = Path(__file__).resolve().parents[3]


def run(capsys, *argv):
    code = main(["summary", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_table_for_a_preset(capsys):
    code, out, err = run(capsys, "lenet5")
    assert code == 0 and err == ""
    assert "6x5x5x1+6 = 156" in out and "28x28x6" in out
    assert "params: 61,706" in out and "notes:" in out and "conventions:" in out
    assert "memory per image, forward" in out and "memory for training" in out


def test_json_document(capsys):
    code, out, _ = run(capsys, "convnetjs", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["name"] == "convnetjs" and doc["params"] == 22_466
    assert {"layers", "params", "flops", "activations", "memory", "notes"} <= set(doc)
    conv = doc["layers"][1]
    assert conv["type"] == "conv" and conv["out_shape"] == [32, 32, 16]
    assert conv["formula"] == "16x5x5x3+16 = 1216" and conv["receptive_field"] == [5, 5]
    assert {"params", "flops", "activations", "bytes"} <= set(conv)
    assert "stored_values" not in conv


def test_input_override(capsys):
    code, out, _ = run(capsys, "resnet18", "--input", "64x64x3", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["input_shape"] == [64, 64, 3] and doc["params"] == 11_689_512


def test_spec_file_and_its_name(capsys, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([{"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 1},
                                {"type": "softmax", "num_classes": 3}]))
    code, out, _ = run(capsys, str(path), "--json")
    assert code == 0 and json.loads(out)["name"] == "mine"


@pytest.mark.parametrize("argv, words", [
    (["alexnet", "--input", "224x224x3"], ["layer 1 (conv), field 'stride'", "54.25", "227"]),
    (["nosuchnet"], ["unknown preset 'nosuchnet'", "presets: convnetjs"]),
    (["missing/net.json"], ["no such file: missing/net.json"]),
    (["vgg16", "--input", "224x224"], ["--input must look like 224x224x3"]),
])
def test_errors_are_one_line_exit_2(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("convnet-demo summary: error: ") and err.count("\n") == 1
    for word in words:
        assert word in err


def test_bad_json_and_bad_spec_files(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"type": "input",\n  "out_sx": 3,]')
    code, _, err = run(capsys, str(bad))
    assert code == 2 and "invalid JSON at line 2, column 15" in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"type": "input", "out_sx": 4, "out_sy": 4, "out_depth": 1},
                                 {"type": "pool", "sx": 3},
                                 {"type": "softmax", "num_classes": 3}]))
    code, _, err = run(capsys, str(wrong))
    assert code == 2 and "layer 1 (pool), field 'stride': (4 - 3 + 2*0)/2 + 1 = 1.5" in err


def test_module_entry_point_prints_vgg16_json():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "engine.cli.main", "summary", "vgg16",
                             "--json"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["params"] == 138_357_544 and doc["activations"] == 15_237_608
