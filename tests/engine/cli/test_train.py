"""`convnet-demo train` end to end on a tiny image folder: progress, snapshot, test accuracy,
resume, one-line errors, divergence, and Ctrl-C (a real SIGINT to a real process)."""

import json
import re
import signal
import subprocess
import time

import pytest

from engine.cli.main import main
from engine.data.cache import CACHE_ENV
from engine.formats.snapshot import load_snapshot
from tests.builders import (INPUT, REPO, cli_command, cli_env, learnable_folder, write_spec)

LINEAR = [INPUT, {"type": "conv", "sx": 4, "filters": 4, "stride": 4},
          {"type": "fc", "num_neurons": 8}, {"type": "softmax", "num_classes": 3}]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return learnable_folder(tmp_path_factory.mktemp("train") / "photos")


@pytest.fixture
def spec_file(tmp_path):
    return write_spec(tmp_path / "tiny.json")


def train(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_trains_saves_and_states_the_test_accuracy_last(capsys, tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    code, out, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                           "40", "--batch-size", "8", "--optimizer", "adam", "--lr", "0.01",
                           "--seed", "1", "--out", str(out_file), "--threads", "1")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: ([\d.]+)% on 30 images after 40 steps "
                         r"\(([\d.]+) epochs, [\d.]+ min of training\)", last)
    assert match and float(match.group(1)) >= 90, last
    assert f"snapshot saved to {out_file}" in out
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert progress and all(k in progress[0] for k in ("loss", "train", "img/s", "ETA"))
    # the thread count it runs with, in the progress line and in a summary at the end
    assert all("img/s, 1 thread ETA" in line for line in progress), progress
    assert "threads: 1 thread (fixed by --threads)" in err.splitlines()
    snapshot = load_snapshot(out_file)
    assert snapshot.step == 40 and snapshot.classes == ["cat", "dog", "frog"]
    assert snapshot.optimizer["hyperparams"]["method"] == "adam"
    assert snapshot.optimizer["hyperparams"]["batch_size"] == 8
    assert snapshot.metrics["test"]["step"] == 40
    assert snapshot.metrics["test"]["accuracy"] == pytest.approx(float(match.group(1)) / 100)
    assert "Traceback" not in err


def test_epochs_json_log_and_resume(capsys, tmp_path, photos, spec_file):
    out_file, log = tmp_path / "run.json", tmp_path / "log.jsonl"
    code, _, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--epochs",
                         "2", "--batch-size", "9", "--out", str(out_file), "--json-log",
                         str(log), "--no-augment")
    assert code == 0, err
    assert load_snapshot(out_file).step == 2 * (81 // 9)           # 81 training images
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["step"] for e in entries] == [9, 18, 18]              # each epoch, then the end
    from engine.threads import machine_threads                      # and the thread count
    assert all(1 <= e["threads"] <= machine_threads() and e["images_per_s"] > 0
               for e in entries), entries
    # --resume continues the snapshot's net, optimizer and step, writing back to it.
    code, out, err = train(capsys, "--resume", str(out_file), "--data", str(photos),
                           "--steps", "3", "--lr", "0.001")
    assert code == 0, err
    resumed = load_snapshot(out_file)
    assert resumed.step == 21 and resumed.optimizer["t"] == 21
    assert resumed.optimizer["hyperparams"]["batch_size"] == 9
    assert resumed.optimizer["hyperparams"]["learning_rate"] == 0.001
    assert f"snapshot saved to {out_file}" in out


def test_the_cosine_schedule_spans_the_run(capsys, tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    code, _, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                         "6", "--schedule", "cosine", "--out", str(out_file))
    assert code == 0, err
    assert load_snapshot(out_file).optimizer["hyperparams"]["total_steps"] == 6


def test_the_linear_schedule_spans_the_run(capsys, tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    code, _, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                         "7", "--schedule", "linear", "--warmup", "2", "--out", str(out_file))
    assert code == 0, err
    hp = load_snapshot(out_file).optimizer["hyperparams"]
    assert (hp["schedule"], hp["total_steps"], hp["warmup_steps"]) == ("linear", 7, 2)


@pytest.mark.parametrize("args, message", [
    (["--net", "no-such-net"], "neither a preset"),
    (["--lr", "-1"], "learning_rate must be"),
    (["--optimizer", "rmsprop"], "method 'rmsprop' is unknown"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--out", "/no/such/folder/x.json"], "there is no folder /no/such/folder"),
    (["--resume", "/no/such/file.json"], "cannot read /no/such/file.json"),
    (["--net", "cifar_small"], "set num_classes to 3"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, tmp_path, photos, spec_file, args, message):
    argv = ["--net", str(spec_file), "--data", str(photos), "--steps", "2",
            "--out", str(tmp_path / "x.json"), *args]
    code, out, err = train(capsys, *argv)
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert err.strip().splitlines()[-1].startswith("convnet-demo train: error: ")
    assert "Traceback" not in err and not (tmp_path / "x.json").exists()


def test_resume_refuses_a_different_net(capsys, tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    assert train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps", "1",
                 "--out", str(out_file))[0] == 0
    other = write_spec(tmp_path / "linear.json", LINEAR)
    code, _, err = train(capsys, "--resume", str(out_file), "--net", str(other),
                         "--data", str(photos))
    assert code == 2 and "holds a different net than --net" in err


def test_divergence_stops_saves_the_last_healthy_weights_and_exits_1(capsys, tmp_path, photos):
    out_file = tmp_path / "run.json"
    code, out, err = train(capsys, "--net", str(write_spec(tmp_path / "lin.json", LINEAR)),
                           "--data", str(photos), "--steps", "100", "--optimizer", "sgd",
                           "--lr", "10", "--out", str(out_file))
    assert code == 1
    assert re.search(r"training diverged at step \d+: the loss (became NaN or infinite|"
                     r"exploded to [\d.e+]+).*paused with the weights of step \d+", err)
    assert "test accuracy:" in out.splitlines()[-1]
    assert load_snapshot(out_file).step < 100                     # validated: all finite


def test_ctrl_c_saves_a_snapshot_and_exits_130_without_a_traceback(tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    proc = subprocess.Popen(
        cli_command("train", "--minutes", "5", "--net", str(spec_file), "--data", str(photos),
                    "--batch-size", "8", "--out", str(out_file)),
        cwd=REPO, env=cli_env(tmp_path / "cache"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:               # wait for the first progress line
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("step ") and "ETA" in line or not line:
                break
        assert "ETA" in lines[-1], "".join(lines)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = "".join(lines) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err
    assert f"snapshot saved to {out_file}" in out
    assert load_snapshot(out_file).step >= 1


def test_with_minutes_the_cosine_is_sized_to_end_with_the_time():
    from types import SimpleNamespace

    from engine.cli.train import CosineToTime

    class FakeTrainer:
        def __init__(self):
            self.optimizer = SimpleNamespace(t=100, hp=SimpleNamespace(total_steps=5000,
                                                                       warmup_steps=10))
            self.applied = []

        def apply(self, changes):
            self.applied.append(changes)
            self.optimizer.hp.total_steps = changes["total_steps"]

    trainer = FakeTrainer()
    sizing = CosineToTime(trainer, minutes=10)          # 600 s, from step 100
    sizing.update(trainer, 10.0)                        # before 5% of the time: nothing yet
    assert trainer.applied == []
    trainer.optimizer.t = 100 + 60                      # 2 steps/s so far
    sizing.update(trainer, 30.0)
    assert trainer.applied == [{"total_steps": 100 + 1200}]
    trainer.optimizer.t = 100 + 225                     # slower since (test evaluations)
    sizing.update(trainer, 150.0)
    assert trainer.applied[-1] == {"total_steps": 100 + 900}
    for elapsed in (300.0, 450.0, 540.0, 590.0):
        trainer.optimizer.t = 100 + round(1.5 * elapsed)
        sizing.update(trainer, elapsed)
    assert trainer.optimizer.hp.total_steps == 100 + 900 and len(trainer.applied) == 2


def test_a_presets_training_options_apply_unless_a_flag_says_otherwise(
        capsys, tmp_path, photos, spec_file, monkeypatch):
    from engine import presets
    # A spec file has no preset name: give "no name" the options cifar_speedrun has, and tta.
    monkeypatch.setitem(presets.TRAINING_OPTIONS, "", {**presets.training_options("cifar_speedrun"),
                                                        "tta": "flip_translate"})
    out_file = tmp_path / "run.json"
    argv = ["--net", str(spec_file), "--data", str(photos), "--steps", "2", "--out",
            str(out_file), "--threads", "1"]
    code, _, err = train(capsys, *argv)
    assert code == 0, err
    options = load_snapshot(out_file).meta["options"]
    assert (options["flip"], options["shift"], options["shift_fill"], options["tta"]) == (
        "alternate", 2, "reflect", "flip_translate")
    code, _, err = train(capsys, *argv, "--flip", "random", "--tta", "none")
    assert code == 0, err
    options = load_snapshot(out_file).meta["options"]
    assert (options["flip"], options["shift_fill"], options["tta"]) == (True, "reflect", "none")


def test_flip_shift_fill_and_tta_flags_reach_the_run(capsys, tmp_path, photos, spec_file):
    out_file = tmp_path / "run.json"
    code, out, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                           "12", "--batch-size", "8", "--optimizer", "adam", "--seed", "1",
                           "--flip", "alternate", "--shift-fill", "reflect", "--tta", "flip",
                           "--out", str(out_file), "--threads", "1")
    assert code == 0, err
    snapshot = load_snapshot(out_file)
    options = snapshot.meta["options"]
    assert (options["flip"], options["shift"], options["shift_fill"], options["tta"]) == (
        "alternate", 2, "reflect", "flip")
    assert snapshot.metrics["test"]["tta"] == "flip"
    code, _, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                         "2", "--no-augment", "--out", str(out_file), "--threads", "1")
    assert code == 0, err
    options = load_snapshot(out_file).meta["options"]
    assert options["flip"] is False and options["shift"] == 0


def test_the_final_tta_scores_the_last_evaluation_only(capsys, tmp_path, photos, spec_file,
                                                        monkeypatch):
    from engine import presets
    # A spec file has no preset name: give "no name" cifar_speedrun's final TTA.
    monkeypatch.setitem(presets.FINAL_TTA, "", presets.final_tta("cifar_speedrun"))
    out_file, log = tmp_path / "run.json", tmp_path / "log.jsonl"
    code, out, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                           "8", "--batch-size", "8", "--test-every", "4", "--json-log", str(log),
                           "--out", str(out_file), "--threads", "1")
    assert code == 0, err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["tta"] for line in lines] == ["none", "none", "flip_translate"]
    assert "(test-time augmentation: flip_translate) on 30 images" in out.splitlines()[-1]
    snapshot = load_snapshot(out_file)
    assert snapshot.metrics["test"]["tta"] == "flip_translate"
    assert snapshot.meta["options"]["tta"] == "none"      # the periodic tests stay single-pass
    code, out, err = train(capsys, "--net", str(spec_file), "--data", str(photos), "--steps",
                           "4", "--batch-size", "8", "--final-tta", "none", "--out",
                           str(out_file), "--threads", "1")
    assert code == 0, err
    assert "test-time augmentation" not in out
    assert load_snapshot(out_file).metrics["test"]["tta"] == "none"
