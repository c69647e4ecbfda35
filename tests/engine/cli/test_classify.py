"""`convnet-demo classify IMAGE...`: any image a person has, one line of error per bad file."""

import json
import re

import pytest
from PIL import Image

from engine.cli.main import main
from engine.data import Normalization, load_image_file, preprocess
from engine.data.cache import CACHE_ENV
from engine.formats.snapshot import load_snapshot
from tests.builders import learnable_folder, train_snapshot

# The colours the tiny data set gives each class (tests/engine/data/builders.solid_image).
COLOUR = {"cat": (40, 20, 200), "dog": (100, 20, 200), "frog": (160, 20, 200)}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    train_snapshot(learnable_folder(root / "photos"), root / "cache", root / "net.json")
    return root / "net.json"


def classify(capsys, *argv):
    code = main(["classify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def solid(label, size=(90, 60), mode="RGB"):
    return Image.new("RGB", size, COLOUR[label]).convert(mode)


def test_every_format_and_size_is_classified(capsys, snapshot, tmp_path):
    files = {}

    def save(name, image, **options):
        files[name] = tmp_path / name
        image.save(files[name], **options)

    save("cat.png", solid("cat"))
    save("dog.bmp", solid("dog", (33, 47)))
    save("frog.gif", solid("frog", (200, 120), "P"))
    save("cat.webp", solid("cat"), lossless=True)
    save("dog.jpg", solid("dog", (640, 480)), quality=95)
    save("frog-alpha.png", Image.new("RGBA", (40, 40), COLOUR["frog"] + (255,)))
    save("grey.png", solid("dog", mode="L"))
    save("cmyk.jpg", solid("cat", mode="CMYK"))
    save("frog.tiff", solid("frog"))
    code, out, err = classify(capsys, *map(str, files.values()), "--snapshot", str(snapshot),
                              "--json")
    # stderr: one line, how long it took and the thread count the tuner chose
    assert code == 0 and re.fullmatch(r"classified 9 images in [\d.]+ s; threads: \d threads? "
                                      r"\((measured: .*|fixed by --threads|not measured yet)\)\n",
                                      err), err
    results = {r["file"]: r for r in map(json.loads, out.splitlines())}
    assert list(results) == [str(p) for p in files.values()]
    for name in ("cat.png", "dog.bmp", "frog.gif", "cat.webp", "dog.jpg", "frog-alpha.png",
                 "frog.tiff"):
        assert results[str(files[name])]["top"][0]["label"] == name.split(".")[0].split("-")[0]
    for result in results.values():
        assert len(result["top"]) == 3 and sum(result["probs"].values()) == pytest.approx(1)


def test_probabilities_are_the_shared_image_path_s_and_exif_rotation_is_applied(
        capsys, snapshot, tmp_path):
    upright = Image.new("RGB", (60, 90), COLOUR["cat"])
    upright.paste(Image.new("RGB", (60, 45), COLOUR["frog"]), (0, 45))   # frog below
    upright.save(tmp_path / "upright.png")
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6                     # "rotate 90 clockwise to display"
    stored.save(tmp_path / "rotated.png", exif=exif)
    code, out, _ = classify(capsys, str(tmp_path / "upright.png"), str(tmp_path / "rotated.png"),
                            "--snapshot", str(snapshot), "--json", "--top", "1")
    first, second = map(json.loads, out.splitlines())
    assert code == 0 and first["probs"] == second["probs"] and len(first["top"]) == 1
    snap = load_snapshot(snapshot)
    pixels = load_image_file(tmp_path / "upright.png", (32, 32))
    x = preprocess(pixels, Normalization.from_dict(snap.preprocess))
    expected = snap.build_net().predict(x).reshape(-1)
    assert [first["probs"][c] for c in snap.classes] == expected.astype(float).tolist()


def test_bad_files_get_one_line_each_and_the_rest_are_classified(capsys, snapshot, tmp_path):
    good = tmp_path / "dog.png"
    solid("dog").save(good)
    (tmp_path / "notes.png").write_text("not an image at all\n")
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "folder.png").mkdir()
    tiny = tmp_path / "tiny.png"                      # a valid image: scaled up, classified
    Image.new("RGB", (1, 1)).save(tiny)
    bad = [tmp_path / name for name in ("missing.png", "notes.png", "cut.png", "folder.png")]
    code, out, err = classify(capsys, str(bad[0]), str(good), *map(str, bad[1:]), str(tiny),
                              "--snapshot", str(snapshot))
    assert code == 1
    lines = err.splitlines()
    assert lines.pop().startswith("classified 2 images in ")
    assert len(lines) == len(bad) and "Traceback" not in err
    for line, path in zip(lines, bad):
        assert line.startswith(f"convnet-demo classify: error: {path}: ")
        assert line.count(str(path)) == 1                # the path once, not twice
    assert len(out.splitlines()) == 2 and out.startswith(f"{good}: dog ")
    assert out.splitlines()[1].startswith(f"{tiny}: ")


def test_json_mode_reports_bad_files_too_and_top_must_be_positive(capsys, snapshot, tmp_path):
    good = tmp_path / "frog.png"
    solid("frog").save(good)
    code, out, err = classify(capsys, str(tmp_path / "nope.jpg"), str(good), "--snapshot",
                              str(snapshot), "--json", "--top", "5")
    first, second = map(json.loads, out.splitlines())
    assert code == 1 and first == {"file": str(tmp_path / "nope.jpg"),
                                   "error": f"{tmp_path / 'nope.jpg'}: no such file"}
    assert len(second["top"]) == 3 and second["top"][0]["label"] == "frog"
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("classified 1 image ")
    code, _, err = classify(capsys, str(good), "--snapshot", str(snapshot), "--top", "0")
    assert code == 2 and "--top must be at least 1" in err


def test_a_bad_snapshot_is_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "x.json").write_text("{")
    code, out, err = classify(capsys, "a.png", "--snapshot", str(tmp_path / "x.json"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "not valid JSON" in err
