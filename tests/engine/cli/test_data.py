import json

import pytest

from engine.cli.main import main
from engine.data.cache import CACHE_ENV
from tests.engine.data.builders import make_image_folder


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "photos", train_per_class=10, test_per_class=3)


def test_data_info_prints_counts_mean_std_cache_and_checksum(folder, capsys, cache_dir):
    assert main(["data", "info", "--data", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "decoding photos: the first use only" in captured.err
    out = captured.out
    assert f"source:     folder ({folder})" in out and "checksum:   sha256:" in out
    assert str(cache_dir / "arrays") in out
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert "class train validation test" in rows
    assert "cat 9 1 3" in rows and "total 27 3 9" in rows
    assert "mean (RGB):" in out and "std (RGB):" in out
    assert main(["data", "info", "--data", str(folder)]) == 0
    assert "(read from cache)" in capsys.readouterr().out


def test_data_info_json_and_validation_option(folder, capsys):
    assert main(["data", "info", "--data", str(folder), "--validation", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"] == {"train": 30, "validation": 0, "test": 9}
    assert info["classes"] == ["cat", "dog", "frog"]


@pytest.mark.parametrize("argv, message", [
    (["data", "info", "--data", "/no/such/place"], "/no/such/place: no such file or folder"),
    (["data", "info", "--validation", "1"], "every k-th image"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("convnet-demo data: error: ") and message in err
    assert "Traceback" not in err


def test_verify_ok(folder, capsys, cache_dir):
    assert main(["data", "verify", "--data", str(folder)]) == 0
    assert f"ok: folder ({folder}), sha256:" in capsys.readouterr().out
    assert not (cache_dir / "arrays").exists()          # verify decodes afresh, caches nothing


def test_verify_reports_unusable_images_and_exits_1(folder, capsys):
    (folder / "test" / "dog" / "001.png").write_bytes(b"broken")
    assert main(["data", "verify", "--data", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "unusable image: test/dog/001.png: " in err and "verify failed: 1 problem" in err


def test_verify_fails_cleanly_on_an_unopenable_source(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "verify", "--data", str(tmp_path / "empty")]) == 1
    assert "no images found" in capsys.readouterr().err


def test_bench_data_reports_loading_times(folder, capsys):
    assert main(["bench", "--data", "--source", str(folder)]) == 0
    assert "open from cache" in capsys.readouterr().out
    assert main(["bench", "--data", "--source", "/no/such/place"]) == 2
