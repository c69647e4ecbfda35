import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from engine.data import DataError
from engine.data.folders import read_image_folder
from tests.engine.data.builders import (CLASSES, make_image_folder, solid_image, tar_folder,
                                        zip_folder)
from tests.engine.data.test_images import png_header_only

SIZE = (32, 32)


def check_tiny(arrays, train_per_class=4, test_per_class=2):
    assert arrays["class_names"] == CLASSES
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        assert images.shape == (3 * count, 32, 32, 3) and images.dtype == np.uint8
        assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [count] * 3
        # The colour encodes (label, index): every image sits under its own class.
        np.testing.assert_array_equal(images[:, 0, 0, 0], 40 + 60 * labels)


def test_directory_tree(tmp_path):
    arrays = read_image_folder(make_image_folder(tmp_path), SIZE)
    check_tiny(arrays)
    assert arrays["skipped"] == []


@pytest.mark.parametrize("pack", [tar_folder, zip_folder])
@pytest.mark.parametrize("arcname", ["", "photos", "."])
def test_archives_with_or_without_a_top_folder(tmp_path, pack, arcname):
    folder = make_image_folder(tmp_path / "src")
    archive = pack(folder, tmp_path / f"photos.{'tar.gz' if pack is tar_folder else 'zip'}",
                   arcname)
    check_tiny(read_image_folder(archive, SIZE))


def test_any_size_and_format_is_resized_to_the_net(tmp_path):
    folder = make_image_folder(tmp_path, train_per_class=1, test_per_class=1)
    Image.new("L", (50, 40), 77).save(folder / "train" / "cat" / "grey.jpg", quality=100)
    solid_image(0, 5, (300, 200)).convert("P").save(folder / "train" / "cat" / "big.gif")
    arrays = read_image_folder(folder, (16, 16))
    assert arrays["train_images"].shape == (5, 16, 16, 3)
    assert np.bincount(arrays["train_labels"]).tolist() == [3, 1, 1]


def test_unusable_files_are_skipped_and_reported(tmp_path):
    folder = make_image_folder(tmp_path)
    cats = folder / "train" / "cat"
    (cats / "notes.txt").write_text("not an image")
    (cats / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (cats / "huge.png").write_bytes(png_header_only(10000, 10000))
    (cats / ".DS_Store").write_bytes(b"junk")            # hidden: ignored, not reported
    (folder / "README.md").write_text("outside the tree: ignored")
    arrays = read_image_folder(folder, SIZE)
    check_tiny(arrays)
    reported = "\n".join(arrays["skipped"])
    assert len(arrays["skipped"]) == 3
    for name, reason in [("notes.txt", "not an image"), ("broken.jpg", "cannot decode|not an"),
                         ("huge.png", "too large")]:
        assert any(f"train/cat/{name}: " in line and any(r in line for r in reason.split("|"))
                   for line in arrays["skipped"]), reported


def test_a_one_pixel_image_is_an_image(tmp_path):
    # Scaled up like any other (engine/data/images.py), as ConvNetJS draws any picture.
    folder = make_image_folder(tmp_path)
    solid_image(0, 9, (1, 1)).save(folder / "train" / "cat" / "dot.png")
    arrays = read_image_folder(folder, SIZE)
    assert np.bincount(arrays["train_labels"]).tolist() == [5, 4, 4]
    assert arrays["skipped"] == []


def test_images_in_sub_folders_of_a_class_count(tmp_path):
    folder = make_image_folder(tmp_path)
    (folder / "train" / "dog" / "2019").mkdir()
    solid_image(1, 9).save(folder / "train" / "dog" / "2019" / "x.png")
    arrays = read_image_folder(folder, SIZE)
    assert np.bincount(arrays["train_labels"]).tolist() == [4, 5, 4]


def test_no_images(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="empty: no images found; expected train/<class>/"):
        read_image_folder(tmp_path / "empty", SIZE)


def test_only_a_train_folder(tmp_path):
    folder = make_image_folder(tmp_path)
    for path in (folder / "test").rglob("*.png"):
        path.unlink()
    with pytest.raises(DataError, match="found only train/"):
        read_image_folder(folder, SIZE)


def test_train_and_test_classes_must_match(tmp_path):
    folder = make_image_folder(tmp_path)
    (folder / "test" / "frog").rename(folder / "test" / "toad")
    with pytest.raises(DataError, match="only in train: frog; only in test: toad"):
        read_image_folder(folder, SIZE)


def test_a_class_with_no_usable_image(tmp_path):
    folder = make_image_folder(tmp_path)
    for path in (folder / "train" / "dog").iterdir():
        path.write_bytes(b"broken")
    with pytest.raises(DataError, match=r"no usable images for class dog in train/ \(4 images"):
        read_image_folder(folder, SIZE)


def test_two_data_sets_in_one_archive_is_ambiguous(tmp_path):
    make_image_folder(tmp_path / "src", prefix="a")
    make_image_folder(tmp_path / "src", prefix="b")
    archive = zip_folder(tmp_path / "src", tmp_path / "two.zip")
    with pytest.raises(DataError, match=r"two.zip: holds several data sets \(a, b\)"):
        read_image_folder(archive, SIZE)


def cut_points(tar_bytes: bytes) -> dict[str, int]:
    """Where to cut an uncompressed tar: at a member's end (before the next header), inside
    a header, inside a member's data, just before the end-of-archive block."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
    data_end = max(m.offset_data + m.size for m in members)
    middle = members[len(members) // 2]
    return {"at_a_member_end": middle.offset, "in_a_header": middle.offset + 100,
            "in_a_members_data": middle.offset_data + 10,
            "before_the_end_block": -(-data_end // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE}


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_a_tar_cut_anywhere_is_damaged_not_a_smaller_data_set(tmp_path, compression):
    """tarfile reads a stream cut at a member's end, or inside a header, as a shorter archive;
    so does a compressed stream of such a cut tar, and a compressed stream cut short."""
    plain = tar_folder(make_image_folder(tmp_path / "src"), tmp_path / "plain.tar").read_bytes()
    pack = {"": lambda b: b, "gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}
    suffix = ".tar" + (f".{compression}" if compression else "")
    whole = tmp_path / f"whole{suffix}"
    whole.write_bytes(pack[compression](plain))
    assert len(read_image_folder(whole, SIZE)["test_images"]) == 2 * len(CLASSES)
    cuts = {name: pack[compression](plain[:at]) for name, at in cut_points(plain).items()}
    if compression:
        packed = pack[compression](plain)
        cuts |= {"compressed_600_bytes": packed[:600], "compressed_half": packed[:len(packed) // 2],
                 "compressed_less_its_last_byte": packed[:-1]}
    for name, data in cuts.items():
        archive = tmp_path / f"{name}{suffix}"
        archive.write_bytes(data)
        with pytest.raises(DataError, match=f"{name}{suffix}: archive is damaged or truncated"):
            read_image_folder(archive, SIZE)


def test_not_an_archive(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not a folder, a .tar"):
        read_image_folder(text, SIZE)


def test_archive_members_that_are_not_files_or_escape_are_ignored(tmp_path):
    folder = make_image_folder(tmp_path / "src")
    archive = tar_folder(folder, tmp_path / "a.tar")
    with tarfile.open(archive, "a") as tar:
        link = tarfile.TarInfo("train/cat/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        data = (folder / "train" / "cat" / "000.png").read_bytes()
        escape = tarfile.TarInfo("../train/cat/escape.png")
        escape.size = len(data)
        tar.addfile(escape, io.BytesIO(data))
    check_tiny(read_image_folder(archive, SIZE))


def test_encrypted_zip_member_is_skipped(tmp_path):
    folder = make_image_folder(tmp_path / "src")
    archive = zip_folder(folder, tmp_path / "a.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("train/cat/secret.png", b"x")
    data = bytearray(archive.read_bytes())
    # Mark the last local header and its directory entry as encrypted (flag bit 0).
    local = data.rfind(b"PK\x03\x04")
    central = data.rfind(b"PK\x01\x02")
    data[local + 6] |= 1
    data[central + 8] |= 1
    archive.write_bytes(bytes(data))
    arrays = read_image_folder(archive, SIZE)
    check_tiny(arrays)
    assert len(arrays["skipped"]) == 1 and "secret.png: cannot read" in arrays["skipped"][0]
