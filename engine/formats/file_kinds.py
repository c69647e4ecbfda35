"""What a file is, from its first bytes: for messages that tell a person they picked the wrong
file ("this is a PNG image, not a snapshot") instead of how a decoder failed on it."""

from __future__ import annotations

# (offset, magic bytes, what the file is); the first match wins.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (8, b"WEBP", "a WebP image"),           # after RIFF and the size
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (4, b"ftypheic", "a HEIC image (an iPhone photo)"),
    (4, b"ftypheix", "a HEIC image (an iPhone photo)"),
    (4, b"ftypmif1", "a HEIF image"),
    (4, b"ftypavif", "an AVIF image"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"PK\x05\x06", "an empty zip archive"),
    (0, b"\x1f\x8b", "a gzip-compressed file"),
    (0, b"BZh", "a bzip2-compressed file"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file"),
    (257, b"ustar", "a tar archive"),
    (0, b"%PDF", "a PDF document"),
    (0, b"\x93NUMPY", "a NumPy .npy file"),
    (0, b"\x08", "an ONNX model (or another protobuf file)"),
)


def what_it_is(data: bytes) -> str | None:
    """"a PNG image", "a zip archive", ... for a file whose first bytes say what it is; "an
    empty file"; "a binary file" for bytes that are not UTF-8 text; None for text."""
    if not data:
        return "an empty file"
    for offset, magic, kind in SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return kind
    # Two-byte signatures that text could begin with, checked with a field after them.
    if data[:2] == b"BM" and len(data) >= 26 and data[6:10] == b"\0\0\0\0":
        return "a BMP image"                  # its two reserved fields are zero
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (never loaded here: it can run code)"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < 4092:              # not merely a character cut at the 4,096th byte
            return "a binary file"
    return None
