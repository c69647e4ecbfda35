"""Image folders: train/<class>/* and test/<class>/*, as a directory, a tar(.gz) or a .zip.

    photos/train/cat/001.jpg   photos/test/cat/100.png   ...   (the bundled set looks the same)

The tree may sit at the top or one folder down (a zipped "photos/" folder). Classes are the
class folder names in sorted order, and train and test must have the same ones. Images may
sit in sub-folders of a class folder, in any size and any format images.py accepts; each is
decoded with load_image_file (so at the net's size, like an upload). Hidden files and
__MACOSX/ are ignored; an image that cannot be used is skipped and reported, not fatal.
Archives are read as a stream, without extracting anything to disk.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from engine.data.decode import decode_many
from engine.data.images import MAX_IMAGE_FILE_BYTES, DataError

SPLITS = ("train", "test")
LAYOUT_HELP = "expected train/<class>/ and test/<class>/ folders of images"


class _Listing:
    """Collects, beside the stream of (name, path or bytes) sent to the decoder, where each
    item sits: (prefix, split, class) for the decoded ones, and reasons for skipped ones."""

    def __init__(self):
        self.places: list[tuple[str, str, str]] = []
        self.skipped: list[str] = []

    def place(self, relpath: str) -> tuple[str, str, str] | None:
        parts = [p for p in relpath.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or ".." in parts or any(p.startswith(".") or p == "__MACOSX"
                                             for p in parts):
            return None
        for depth in (0, 1):
            if len(parts) >= depth + 3 and parts[depth] in SPLITS:
                return ("/".join(parts[:depth]), parts[depth], parts[depth + 1])
        return None

    def items(self, members):
        """members: (relpath, size, read) with read() -> path or bytes."""
        for relpath, size, read in members:
            place = self.place(relpath)
            if place is None:
                continue
            if size > MAX_IMAGE_FILE_BYTES:
                self.skipped.append(f"{relpath}: file larger than "
                                    f"{MAX_IMAGE_FILE_BYTES // 2**20} MiB")
                continue
            try:
                source = read()
            except (OSError, RuntimeError, zipfile.BadZipFile) as exc:
                self.skipped.append(f"{relpath}: cannot read ({exc})")
                continue
            self.places.append(place)
            yield relpath, source


def _directory_files(root: Path):
    """(relpath, path) of the files under root/{train,test} and root/*/{train,test}, sorted."""
    tops = [root] + sorted(p for p in root.iterdir()
                           if p.is_dir() and p.name not in SPLITS and not p.name.startswith("."))
    for top in tops:
        for split in SPLITS:
            for directory, subdirs, files in os.walk(top / split):
                subdirs.sort()
                for name in sorted(files):
                    path = os.path.join(directory, name)
                    yield os.path.relpath(path, root), path


def _size_and_mtime(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return 0, 0                         # reported when the decoder tries to read it
    return stat.st_size, stat.st_mtime_ns


def _directory_members(root: Path):
    for relpath, path in _directory_files(root):
        yield relpath, _size_and_mtime(path)[0], (lambda path=path: path)


def _tar_members(tar: tarfile.TarFile):
    for member in tar:
        if member.isfile():
            yield member.name, member.size, (lambda m=member: tar.extractfile(m).read())


# what a compressed tar starts with, and the reader that raises EOFError where it is cut short
DECOMPRESSORS = ((b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw)), (b"BZh", bz2.BZ2File),
                 (b"\xfd7zXZ\x00", lzma.LZMAFile))


def _decompressor(path: Path):
    """The reader for a compressed file, by its first bytes; None for any other file."""
    with open(path, "rb") as file:
        magic = file.read(6)
    return next((opener for prefix, opener in DECOMPRESSORS if magic.startswith(prefix)), None)


@contextlib.contextmanager
def _tar_stream(path: Path):
    """The archive as a tar stream; a TarError or EOFError where it is cut short, after the
    members are read. tarfile alone takes a stream cut at a member's end, or inside a header,
    for the end of the archive; only the end-of-archive block (zeros) tells them apart."""
    opener = _decompressor(path)
    with contextlib.ExitStack() as stack:
        data = stack.enter_context(open(path, "rb"))
        if opener is not None:
            data = stack.enter_context(opener(data))
        tar = stack.enter_context(tarfile.open(fileobj=data, mode="r|"))
        yield tar
        while data.read(1 << 20):       # the rest, past what tarfile buffered
            pass
        if data.tell() - tar.offset < tarfile.BLOCKSIZE:
            raise tarfile.ReadError("it ends before its end-of-archive block")


def _zip_members(archive: zipfile.ZipFile):
    for info in archive.infolist():
        if not info.is_dir():
            yield info.filename, info.file_size, (lambda i=info: archive.read(i))


def folder_fingerprint(path: Path) -> str:
    """A cheap identity of a directory tree: sha256 of every file's (path, size, mtime)."""
    digest = hashlib.sha256()
    for relpath, file in _directory_files(path):
        size, mtime_ns = _size_and_mtime(file)
        digest.update(f"{relpath}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()


def read_image_folder(path: Path, size: tuple[int, int], workers: int | None = None) -> dict:
    """Decode a folder tree or archive -> {train_images, train_labels, test_images,
    test_labels, class_names, skipped}. DataError when nothing usable remains."""
    listing = _Listing()
    try:
        if path.is_dir():
            images, problems = decode_many(listing.items(_directory_members(path)), size,
                                           workers)
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                images, problems = decode_many(listing.items(_zip_members(archive)), size,
                                               workers)
        elif _decompressor(path) is not None or tarfile.is_tarfile(path):
            with _tar_stream(path) as tar:
                images, problems = decode_many(listing.items(_tar_members(tar)), size,
                                               workers)
        else:
            raise DataError(f"{path}: not a folder, a .tar(.gz) or a .zip of images "
                            f"({LAYOUT_HELP})")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: archive is damaged or truncated ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return _assemble(path, images, problems, listing)


def _assemble(path: Path, images: np.ndarray, problems, listing: _Listing) -> dict:
    prefix = _choose_prefix(path, listing.places)
    usable = np.ones(len(images), dtype=bool)
    skipped = list(listing.skipped)
    for index, message in problems:
        usable[index] = False
        if listing.places[index][0] == prefix:
            skipped.append(message)
    in_tree = np.array([place[0] == prefix for place in listing.places], dtype=bool)
    classes = {split: sorted({c for p, s, c in listing.places if p == prefix and s == split})
               for split in SPLITS}
    if classes["train"] != classes["test"]:
        only_train = sorted(set(classes["train"]) - set(classes["test"]))
        only_test = sorted(set(classes["test"]) - set(classes["train"]))
        raise DataError(f"{path}: train and test must have the same class folders; only in "
                        f"train: {', '.join(only_train) or '-'}; only in test: "
                        f"{', '.join(only_test) or '-'}")
    class_names = tuple(classes["train"])
    result = {"class_names": class_names, "skipped": skipped}
    for split in SPLITS:
        keep = in_tree & usable & np.array([s == split for _, s, _ in listing.places],
                                           dtype=bool)
        labels = np.array([class_names.index(listing.places[i][2])
                           for i in np.flatnonzero(keep)], dtype=np.int64)
        counts = np.bincount(labels, minlength=len(class_names))
        if split == "train" and counts.min() == 0:
            empty = [name for name, count in zip(class_names, counts) if count == 0]
            raise DataError(f"{path}: no usable images for class {', '.join(empty)} in "
                            f"train/ ({len(skipped)} images skipped; first: "
                            f"{skipped[0] if skipped else '-'})")
        if not len(labels):
            raise DataError(f"{path}: no usable images in {split}/ ({len(skipped)} skipped)")
        result[f"{split}_images"] = images[keep]
        result[f"{split}_labels"] = labels
    return result


def _choose_prefix(path: Path, places) -> str:
    splits_by_prefix: dict[str, set[str]] = {}
    for prefix, split, _ in places:
        splits_by_prefix.setdefault(prefix, set()).add(split)
    complete = sorted(p for p, splits in splits_by_prefix.items() if splits == set(SPLITS))
    if "" in complete:
        return ""
    if len(complete) == 1:
        return complete[0]
    if len(complete) > 1:
        raise DataError(f"{path}: holds several data sets ({', '.join(complete)}); point "
                        f"--data at one of them")
    if not places:
        raise DataError(f"{path}: no images found; {LAYOUT_HELP}")
    found = ", ".join(sorted(f"{p + '/' if p else ''}{s}/" for p, splits in
                             splits_by_prefix.items() for s in splits))
    raise DataError(f"{path}: {LAYOUT_HELP}; found only {found}")
