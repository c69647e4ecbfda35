"""What a file is, from its first bytes (engine/formats/file_kinds.py), and the snapshot loader's
refusal that says so: "this is a PNG image, not a snapshot", not a JSON decoder's complaint
about byte 0x89."""

import gzip
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from engine.formats.file_kinds import what_it_is
from engine.formats.snapshot import SNAPSHOT_IS, SnapshotError, loads


def image_bytes(fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, fmt, **options)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("snapshot.json", "{}")
    return out.getvalue()


def tar_bytes() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        info = tarfile.TarInfo("a.json")
        info.size = 2
        t.addfile(info, io.BytesIO(b"{}"))
    return out.getvalue()


def npy_bytes() -> bytes:
    out = io.BytesIO()
    np.save(out, np.zeros(3))
    return out.getvalue()


KINDS = [
    (lambda: image_bytes("PNG"), "a PNG image"),
    (lambda: image_bytes("JPEG"), "a JPEG image"),
    (lambda: image_bytes("GIF"), "a GIF image"),
    (lambda: image_bytes("WEBP"), "a WebP image"),
    (lambda: image_bytes("TIFF"), "a TIFF image"),
    (lambda: image_bytes("BMP"), "a BMP image"),
    (zip_bytes, "a zip archive"),
    (tar_bytes, "a tar archive"),
    (lambda: gzip.compress(b'{"format": "convnet-demo-snapshot"}'), "a gzip-compressed file"),
    (lambda: b"%PDF-1.7\n...", "a PDF document"),
    (npy_bytes, "a NumPy .npy file"),
    (lambda: b"\x80\x04\x95\x05\x00", "a Python pickle (never loaded here: it can run code)"),
    (lambda: b"", "an empty file"),
    (lambda: bytes(range(256)) * 4, "a binary file"),
]


@pytest.mark.parametrize("make, kind", KINDS, ids=[k for _, k in KINDS])
def test_a_files_first_bytes_say_what_it_is(make, kind):
    assert what_it_is(make()) == kind


def test_text_is_text_even_cut_inside_a_character():
    assert what_it_is(b'{"format": 1}') is None
    assert what_it_is(b"BMW, not a bitmap: plain text") is None
    assert what_it_is(("x" * 4095 + "é").encode()) is None     # é cut at the 4,096th byte


@pytest.mark.parametrize("make, kind", KINDS[:8], ids=[k for _, k in KINDS[:8]])
def test_a_snapshot_load_says_what_the_file_is_and_what_a_snapshot_is(make, kind):
    with pytest.raises(SnapshotError) as info:
        loads(make())
    assert str(info.value) == f"this is {kind} (not valid JSON), not a snapshot: {SNAPSHOT_IS}"
    assert "codec" not in str(info.value) and "0x" not in str(info.value)
    assert SNAPSHOT_IS == ("a snapshot is a .json file saved by convnet-demo (Save snapshot) "
                           "or ConvNetJS's Net.toJSON()")


@pytest.mark.parametrize("data, says", [
    (b"hello, this is a note", "not valid JSON: Expecting value: line 1 column 1 (char 0); "
                               "this is text, not a snapshot"),
    (json.dumps([{"type": "input"}]).encode(), "this JSON is a list (a net spec's layer list? "
                                               "open it in the network editor)"),
    (b'"a string"', "this JSON is a string; a snapshot is a JSON object"),
    (b'{"format": "something-else"}', "not a convnet-demo snapshot"),
])
def test_json_and_text_that_are_no_snapshot_say_so(data, says):
    with pytest.raises(SnapshotError) as info:
        loads(data)
    assert says in str(info.value) and SNAPSHOT_IS in str(info.value)
