import argparse
import time

import numpy as np
import pytest

from engine.data import (CIFAR10_CLASSES, DataError, Dataset, add_data_argument, open_source,
                         preprocess)
from engine.data.sources import BUNDLED_ARCHIVE, BUNDLED_SHA256
from tests.engine.data.builders import CLASSES, make_image_folder, solid_image, tar_folder


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "photos", train_per_class=10, test_per_class=2)


def test_folder_source_decodes_once_then_reads_the_cache(folder, cache_dir):
    messages = []
    first = open_source(folder, log=messages.append)
    assert not first.source.from_cache and messages[0].startswith("decoding photos: ")
    assert first.source.cache_path.parent == cache_dir / "arrays"
    second = open_source(str(folder), log=messages.append)
    assert second.source.from_cache and len(messages) == 1
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(first.split(name).images, second.split(name).images)
        np.testing.assert_array_equal(first.split(name).labels, second.split(name).labels)
    assert first.normalization == second.normalization
    assert second.class_names == CLASSES and second.image_size == (32, 32)


def test_changing_the_folder_decodes_again(folder):
    open_source(folder)
    solid_image(0, 50).save(folder / "train" / "cat" / "new.png")
    reopened = open_source(folder)
    assert not reopened.source.from_cache
    assert len(reopened.train) + len(reopened.validation) == 31


def test_splits_and_normalisation_of_the_training_split(folder):
    dataset = open_source(folder)                           # every 10th held out
    assert dataset.train.class_counts().tolist() == [9, 9, 9]
    assert dataset.validation.class_counts().tolist() == [1, 1, 1]
    assert dataset.test.class_counts().tolist() == [2, 2, 2]
    pixels = dataset.train.images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(dataset.normalization.mean, pixels.mean(axis=0))
    std = pixels.std(axis=0)
    assert std[2] == 0                                      # blue is constant in these images
    np.testing.assert_allclose(dataset.normalization.std, np.where(std > 0, std, 1.0))
    x = dataset.preprocess(dataset.test.images)
    np.testing.assert_array_equal(x, preprocess(dataset.test.images, dataset.normalization))
    halves = open_source(folder, validation="0.5")
    assert halves.validation.class_counts().tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="every k-th"):
        open_source(folder, validation="1")


def test_other_image_sizes_are_cached_separately(folder):
    small = open_source(folder, image_size=(16, 16))
    assert small.train.images.shape[1:] == (16, 16, 3) and not small.source.from_cache
    assert not open_source(folder).source.from_cache


def test_damaged_cache_is_decoded_again(folder):
    first = open_source(folder)
    (first.source.cache_path / "train_labels.npy").write_bytes(b"junk")
    again = open_source(folder)
    assert not again.source.from_cache
    np.testing.assert_array_equal(again.train.labels, first.train.labels)
    assert open_source(folder).source.from_cache


def test_cache_that_cannot_be_written_is_reported_not_fatal(folder, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    messages = []
    dataset = open_source(folder, cache_dir=blocked, log=messages.append)
    assert dataset.source.cache_path is None and "cannot cache" in messages[-1]
    assert len(dataset.test) == 6


def test_use_cache_false_neither_reads_nor_writes(folder, cache_dir):
    dataset = open_source(folder, use_cache=False)
    assert dataset.source.cache_path is None and not (cache_dir / "arrays").exists()


def test_archive_source_checksum_is_the_files(folder, tmp_path):
    archive = tar_folder(folder, tmp_path / "photos.tar.gz")
    dataset = open_source(archive)
    assert dataset.source.kind == "folder" and dataset.source.checksum.startswith("sha256:")
    assert open_source(archive).source.from_cache


def test_missing_path_names_it_and_the_choices(tmp_path):
    with pytest.raises(DataError, match="nope: no such file or folder; --data takes bundled, "
                                        "official, or the path"):
        open_source(str(tmp_path / "nope"))


def test_info_is_json_ready(folder):
    info = open_source(folder).info()
    assert info["counts"] == {"train": 27, "validation": 3, "test": 6}
    assert info["counts_per_class"]["test"] == [2, 2, 2]
    assert info["classes"] == list(CLASSES) and info["skipped"] == 0
    assert set(info["normalization"]) == {"mean", "std"}


def test_add_data_argument():
    parser = argparse.ArgumentParser()
    add_data_argument(parser)
    assert vars(parser.parse_args([])) == {"data": "bundled", "validation": "10"}
    args = parser.parse_args(["--data", "/x", "--validation", "0.2"])
    assert (args.data, args.validation) == ("/x", "0.2")


@pytest.mark.slow
def test_bundled_cifar10_from_scratch_then_from_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("bundled-cache")
    started = time.perf_counter()
    dataset = open_source(cache_dir=cache, validation=0)
    from_scratch = time.perf_counter() - started
    assert isinstance(dataset, Dataset) and dataset.source.kind == "bundled"
    assert dataset.source.checksum == f"sha256:{BUNDLED_SHA256}"
    assert dataset.source.location == str(BUNDLED_ARCHIVE)
    assert dataset.class_names == CIFAR10_CLASSES and dataset.source.skipped == ()
    assert dataset.train.class_counts().tolist() == [5000] * 10
    assert dataset.test.class_counts().tolist() == [1000] * 10
    assert dataset.train.images.shape == (50000, 32, 32, 3)
    assert 118 < dataset.train.images.mean() < 124        # the README's 120.8 overall
    started = time.perf_counter()
    cached = open_source(cache_dir=cache)                  # default: every 10th held out
    from_cache = time.perf_counter() - started
    assert cached.source.from_cache
    assert cached.train.class_counts().tolist() == [4500] * 10
    assert cached.validation.class_counts().tolist() == [500] * 10
    np.testing.assert_array_equal(cached.test.images[::997], dataset.test.images[::997])
    print(f"bundled CIFAR-10: {from_scratch:.2f} s from scratch, {from_cache:.3f} s cached")


def test_a_data_sets_title_is_its_name_never_a_path_inside_the_package(tmp_path):
    from engine.data import source_title
    from engine.data.sources import BUNDLED_ARCHIVE
    assert source_title("bundled") == source_title(None) == "CIFAR-10 (bundled)"
    assert source_title(BUNDLED_ARCHIVE, "bundled") == "CIFAR-10 (bundled)"
    assert source_title("official") == "CIFAR-10 (the official archive)"
    assert source_title(tmp_path / "cifar-10-python.tar.gz", "official") == (
        "CIFAR-10 (cifar-10-python.tar.gz)")
    assert source_title(str(tmp_path / "my photos") + "/", "folder") == "my photos"
    assert "site-packages" not in source_title(BUNDLED_ARCHIVE, "bundled")
