import numpy as np
import pytest

from engine.data.augment import (Augmentation, BatchIterator, augment_batch, batches,
                                 make_batch)
from engine.data.dataset import Split
from engine.data.normalize import Normalization, preprocess

NORM = Normalization(mean=(100.0, 100.0, 100.0), std=(50.0, 50.0, 50.0))


def naive_augment(x, rng, shift, flip):
    """Loop per image: pad with zeros, cut the shifted window, mirror it on a coin flip."""
    n, c, h, w = x.shape
    dy = rng.integers(-shift, shift + 1, size=n) if shift else np.zeros(n, int)
    dx = rng.integers(-shift, shift + 1, size=n) if shift else np.zeros(n, int)
    mirrored = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    out = np.zeros_like(x)
    for i in range(n):
        padded = np.zeros((c, h + 2 * shift, w + 2 * shift), x.dtype)
        padded[:, shift:shift + h, shift:shift + w] = x[i]
        window = padded[:, shift + dy[i]:shift + dy[i] + h, shift + dx[i]:shift + dx[i] + w]
        out[i] = window[:, :, ::-1] if mirrored[i] else window
    return out


@pytest.mark.parametrize("shift, flip", [(2, True), (2, False), (0, True), (3, True)])
@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (6, 3, 5, 7), (4, 1, 1, 1)])
def test_augment_matches_a_loop_per_image(rng, shape, shift, flip):
    x = rng.standard_normal(shape).astype(np.float32)
    out = augment_batch(x, np.random.default_rng(5), Augmentation(flip=flip, shift=shift))
    expected = naive_augment(x, np.random.default_rng(5), shift, flip)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, expected)


def test_augment_takes_non_contiguous_input(rng):
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)[:, :, ::2, ::2]
    out = augment_batch(x, np.random.default_rng(1))
    np.testing.assert_array_equal(out, naive_augment(x, np.random.default_rng(1), 2, True))


def test_augment_does_flip_and_shift_within_bounds(rng):
    x = rng.standard_normal((400, 1, 6, 6)).astype(np.float32)
    out = augment_batch(x, np.random.default_rng(2), Augmentation(flip=True, shift=0))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and 150 < mirrored.sum() < 250


def make_split(rng, count=23, classes=3, size=(4, 5)):
    images = rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)
    labels = np.arange(count) % classes
    return Split("train", images, labels, None, ("a", "b", "c"), NORM), images, labels


def test_batches_cover_the_split_once_per_epoch_in_shuffled_order(rng):
    split, images, labels = make_split(rng)
    seen = []
    for x, y in batches(split, 5, rng=3):
        assert x.dtype == np.float32 and x.shape[1:] == (3, 4, 5) and y.dtype == np.int64
        seen.append(y)
        # without augmentation each row is the preprocessed image of its label's position
    sizes = [len(y) for y in seen]
    assert sizes == [5, 5, 5, 5, 3]
    order = np.random.default_rng(3).permutation(23)
    np.testing.assert_array_equal(np.concatenate(seen), labels[order])
    x, _ = next(batches(split, 5, rng=3))
    np.testing.assert_array_equal(x, preprocess(images[order[:5]], NORM))


def test_batches_without_shuffle_and_drop_last(rng):
    split, images, labels = make_split(rng)
    ys = [y for _, y in batches(split, 5, shuffle=False, drop_last=True)]
    np.testing.assert_array_equal(np.concatenate(ys), labels[:20])


def test_same_seed_same_batches_different_seed_different(rng):
    split, _, _ = make_split(rng)
    first = [x for x, _ in batches(split, 8, rng=7, augment=True)]
    again = [x for x, _ in batches(split, 8, rng=7, augment=True)]
    other = [x for x, _ in batches(split, 8, rng=8, augment=True)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_batch_iterator_runs_across_epochs_deterministically(rng):
    split, _, labels = make_split(rng, count=10)
    iterator = BatchIterator(split, 4, rng=11)
    ys = np.concatenate([next(iterator)[1] for _ in range(5)])   # 20 images = 2 epochs
    assert iterator.epoch == 2 and iterator.position == 0
    gen = np.random.default_rng(11)
    expected = np.concatenate([labels[gen.permutation(10)], labels[gen.permutation(10)]])
    np.testing.assert_array_equal(ys, expected)
    repeat = BatchIterator(split, 4, rng=11, augment=True)
    again = BatchIterator(split, 4, rng=11, augment=True)
    for _ in range(4):
        np.testing.assert_array_equal(next(repeat)[0], next(again)[0])


def test_batch_iterator_on_a_subset_split_gathers_from_the_parent(rng):
    images = rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(12) % 3
    indices = np.array([1, 4, 7, 10])
    split = Split("validation", images, labels, indices, ("a", "b", "c"), NORM)
    x, y = make_batch(split, np.array([3, 0]))
    np.testing.assert_array_equal(y, labels[[10, 1]])
    np.testing.assert_array_equal(x, preprocess(images[[10, 1]], NORM))
    np.testing.assert_array_equal(split.images, images[indices])
    assert not split.images.flags.writeable


def test_bad_arguments(rng):
    split, _, _ = make_split(rng)
    with pytest.raises(ValueError, match="batch size"):
        batches(split, 0)
    with pytest.raises(ValueError, match="empty"):
        BatchIterator(Split("validation", split.images, split.labels, np.array([], int),
                            split.class_names, NORM), 4)


# --- reflection fill and derandomised (alternate) flips ---------------------------------------

def naive_reflect_augment(x, rng, shift, mirrored=None):
    """Loop per image: numpy's reflect padding, the shifted window, then the mirror (drawn as
    augment_batch draws it, or given)."""
    n, c, h, w = x.shape
    dy = rng.integers(-shift, shift + 1, size=n) if shift else np.zeros(n, int)
    dx = rng.integers(-shift, shift + 1, size=n) if shift else np.zeros(n, int)
    if mirrored is None:
        mirrored = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        padded = np.pad(x[i], ((0, 0), (shift, shift), (shift, shift)), mode="reflect")
        window = padded[:, shift + dy[i]:shift + dy[i] + h, shift + dx[i]:shift + dx[i] + w]
        out[i] = window[:, :, ::-1] if mirrored[i] else window
    return out


@pytest.mark.parametrize("shift", [1, 2, 4, 8])
@pytest.mark.parametrize("shape", [(5, 3, 8, 8), (6, 2, 5, 7), (7, 1, 3, 3)])
def test_reflect_fill_matches_numpys_reflect_padding(rng, shape, shift):
    # shift 4 and 8 on a 3x3 image reflect more than once, as np.pad does
    x = rng.standard_normal(shape).astype(np.float32)
    out = augment_batch(x, np.random.default_rng(9),
                        Augmentation(flip=True, shift=shift, shift_fill="reflect"))
    np.testing.assert_array_equal(out, naive_reflect_augment(x, np.random.default_rng(9), shift))


def test_reflect_fill_takes_every_pixel_from_its_own_image_and_adds_no_zeros(rng):
    x = rng.uniform(1, 2, (300, 1, 6, 6)).astype(np.float32) + 10 * np.arange(300)[:, None,
                                                                                  None, None]
    out = augment_batch(x, np.random.default_rng(3), Augmentation(False, 2, "reflect"))
    for image, source in zip(out, x):
        assert np.isin(image, source).all()
    zero = augment_batch(x, np.random.default_rng(3), Augmentation(False, 2, "zero"))
    assert (zero == 0).any() and not (out == 0).any()
    moved = ~np.all(out == x, axis=(1, 2, 3))
    assert moved.sum() > 250       # 24 of 25 shifts move the image


def image_ids_and_flips(x, originals):
    """For each augmented (unshifted) image: which original it is and whether it is mirrored."""
    ids, flips = [], []
    for image in x:
        same = np.flatnonzero(np.all(originals == image, axis=(1, 2, 3)))
        mirrored = np.flatnonzero(np.all(originals[..., ::-1] == image, axis=(1, 2, 3)))
        assert len(same) + len(mirrored) == 1, "every image is one original, one way round"
        ids.append(int(same[0]) if len(same) else int(mirrored[0]))
        flips.append(not len(same))
    return ids, flips


def test_alternate_flip_mirrors_each_image_the_other_way_every_epoch(rng):
    count = 23
    split, images, _ = make_split(rng, count=count, size=(4, 5))
    originals = preprocess(images, NORM)
    # batch 5 does not divide 23: batches straddle epochs, so the epoch is per image
    iterator = BatchIterator(split, 5, rng=4, augment=Augmentation("alternate", 0),
                             flip_seed=12)
    state = {}                                # (epoch, image) -> mirrored
    taken = 0
    while taken < 6 * count:
        epochs = [(taken + k) // count for k in range(5)]
        x, _ = next(iterator)
        for epoch, image, flipped in zip(epochs, *image_ids_and_flips(x, originals)):
            assert (epoch, image) not in state, "each image once per epoch"
            state[(epoch, image)] = flipped
        taken += 5
    first = np.array([state[(0, i)] for i in range(count)])
    assert 4 <= first.sum() <= count - 4             # epoch 0 is random: some of each
    for epoch in range(1, 6):
        for image in range(count):
            assert state[(epoch, image)] != state[(epoch - 1, image)], (epoch, image)
    # a random flip does not alternate (the same split and seeds)
    iterator = BatchIterator(split, 23, rng=4, augment=Augmentation(True, 0))
    flips = [dict(zip(*image_ids_and_flips(next(iterator)[0], originals))) for _ in range(3)]
    assert any(flips[e][i] == flips[e + 1][i] for e in range(2) for i in range(count))


def test_alternate_flips_survive_a_new_iterator_and_depend_on_the_flip_seed(rng):
    # the trainer remakes its iterator on a batch-size change or a loaded snapshot, with a
    # new shuffle seed: the flips follow the epoch and flip_seed alone
    split, images, _ = make_split(rng, count=20)
    originals = preprocess(images, NORM)
    aug = Augmentation("alternate", 0)

    def flips_in_epoch(epoch, shuffle_seed, flip_seed):
        iterator = BatchIterator(split, 20, rng=shuffle_seed, augment=aug, flip_seed=flip_seed)
        iterator.epoch = epoch
        return dict(zip(*image_ids_and_flips(next(iterator)[0], originals)))

    epoch3 = flips_in_epoch(3, shuffle_seed=1, flip_seed=5)
    assert flips_in_epoch(3, shuffle_seed=2, flip_seed=5) == epoch3
    epoch4 = flips_in_epoch(4, shuffle_seed=3, flip_seed=5)
    assert all(epoch4[i] != epoch3[i] for i in range(20))
    assert flips_in_epoch(3, shuffle_seed=1, flip_seed=6) != epoch3


def test_alternate_flip_with_a_shift_shifts_within_bounds(rng):
    x = rng.standard_normal((50, 2, 6, 6)).astype(np.float32)
    mirrored = rng.random(50) < 0.5
    aug = Augmentation("alternate", 2, "reflect")
    out = augment_batch(x, np.random.default_rng(1), aug, mirrored)
    expected = naive_reflect_augment(x, np.random.default_rng(1), 2, mirrored)
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="flip state"):
        augment_batch(x, np.random.default_rng(1), aug)


@pytest.mark.parametrize("kwargs, match", [({"flip": "sometimes"}, "flip"),
                                           ({"flip": 1}, "flip"),
                                           ({"shift_fill": "edge"}, "shift_fill")])
def test_augmentation_refuses_unknown_modes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Augmentation(**kwargs)
