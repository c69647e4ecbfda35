import os
import pickle
import socket
import time

import numpy as np
import pytest

from engine.data import DataError, open_source
from engine.data.official import OfficialArchive, read_official
from tests.engine.data.builders import (OFFICIAL_CLASSES, official_files, python2_pickle,
                                        write_official_archive, write_official_dir)


@pytest.fixture(scope="module")
def release():
    return official_files(per_batch=20)


def check_arrays(arrays, expected):
    assert arrays["class_names"] == OFFICIAL_CLASSES
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(arrays[name], expected[name])
    assert arrays["train_images"].shape == (100, 32, 32, 3)
    assert arrays["train_labels"].dtype == np.int64


def test_reads_the_archive_and_the_extracted_folder(tmp_path, release):
    files, expected = release
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_official_archive(archive, files)
    check_arrays(read_official(archive), expected)
    check_arrays(read_official(write_official_dir(tmp_path / "x", files)), expected)


def test_refuses_pickles_that_would_run_code(tmp_path, release):
    files, _ = release
    evil = dict(files, test_batch=pickle.dumps(os.system, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: .*refusing to load \w+\.system"):
        read_official(write_official_dir(tmp_path, evil))


@pytest.mark.parametrize("change, message", [
    ({"test_batch": python2_pickle({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]})},
     "data is not uint8"),
    ({"test_batch": python2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})},
     "labels are not 2 integers below 10"),
    ({"test_batch": b"\x80\x02garbage"}, "not a CIFAR-10 batch"),
    ({"batches.meta": python2_pickle({b"other": 1})}, "no 'label_names'"),
])
def test_malformed_batches_name_the_file(tmp_path, release, change, message):
    files, _ = release
    with pytest.raises(DataError, match=message):
        read_official(write_official_dir(tmp_path, dict(files, **change)))


def test_missing_batch(tmp_path, release):
    files, _ = release
    files = {k: v for k, v in files.items() if k != "data_batch_3"}
    with pytest.raises(DataError, match="missing data_batch_3"):
        read_official(write_official_dir(tmp_path, files))


def test_local_copies_are_used_in_place_and_verified(tmp_path, release, cache_dir):
    files, expected = release
    archive = tmp_path / "my-copy.tar.gz"                 # renamed: found by its contents
    md5 = write_official_archive(archive, files)
    dataset = open_source(archive, archive=OfficialArchive(md5=md5), validation=0)
    assert dataset.source.kind == "official" and dataset.source.checksum == f"md5:{md5}"
    np.testing.assert_array_equal(dataset.test.images, expected["test_images"])
    assert not (cache_dir / "downloads").exists()
    with pytest.raises(DataError, match=f"my-copy.tar.gz: md5 is {md5}, expected 0{{32}}"):
        open_source(archive, archive=OfficialArchive(md5="0" * 32))
    folder = write_official_dir(tmp_path / "extracted", files)
    from_dir = open_source(folder.parent, validation=0)   # the folder holding the batches
    assert from_dir.source.kind == "official"
    np.testing.assert_array_equal(from_dir.train.images, expected["train_images"])


def test_truncated_archive(tmp_path, release):
    files, _ = release
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_official_archive(archive, files)
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(DataError, match="damaged or truncated"):
        read_official(archive)
    with pytest.raises(DataError, match="md5 is"):
        open_source(archive)


def test_official_downloads_once_into_the_cache(tmp_path, release, cache_dir, http_server):
    files, expected = release
    md5 = write_official_archive(tmp_path / "served.tar.gz", files)
    http_server.files["/cifar.tar.gz"] = (tmp_path / "served.tar.gz").read_bytes()
    archive = OfficialArchive(url=http_server.url("/cifar.tar.gz"), md5=md5)
    progress = []
    first = open_source("official", archive=archive, validation=0,
                        progress=lambda done, total: progress.append((done, total)))
    assert (cache_dir / "downloads" / "cifar-10-python.tar.gz").is_file()
    assert progress and progress[-1][0] == progress[-1][1]
    np.testing.assert_array_equal(first.train.labels, expected["train_labels"])
    again = open_source("official", archive=archive, validation=0)
    assert again.source.from_cache and http_server.hits == ["/cifar.tar.gz"]


def test_official_without_network_fails_fast_naming_the_alternatives(cache_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    archive = OfficialArchive(url=f"http://127.0.0.1:{port}/cifar.tar.gz", timeout=2)
    started = time.monotonic()
    with pytest.raises(DataError) as error:
        open_source("official", archive=archive, progress=lambda *_: None)
    assert time.monotonic() - started < 2
    message = str(error.value)
    assert "cannot download" in message and "--data bundled" in message
    assert "cifar-10-batches-py/" in message and str(cache_dir / "downloads") in message
    assert list((cache_dir / "downloads").iterdir()) == []
    with pytest.raises(DataError, match="not in .*downloads"):
        open_source("official", allow_download=False)
