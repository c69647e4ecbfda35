"""The rollback and the healthy checkpoint: two sets of copies, swapped, never more; and the
loss watch that tells a healthy step from an exploding one."""

import numpy as np

from engine.train.rollback import LossWatch, Rollback


def arrays(value=1.0):
    return [np.full((3, 4), value, np.float32), np.full(5, value, np.float32)]


def test_a_checkpoint_is_the_saved_copy_and_the_buffers_only_swap():
    rollback, live = Rollback(), arrays(1.0)
    rollback.save(live, (1, 1))
    first = rollback._copies
    assert rollback.keep_as_checkpoint(step=1, n_weights=1)
    assert rollback.checkpoint[0] is first and rollback.checkpoint[2] == 1
    ids = set()
    for step in range(2, 12):
        for a in live:
            a += 1.0
        rollback.save(live, (step, step))
        assert rollback.keep_as_checkpoint(step=step, n_weights=1, growth_limit=10.0)
        ids.update(id(a) for a in rollback.checkpoint[0])
    assert len(ids) == 4                    # two sets of two arrays, taking turns
    for a in live:
        a.fill(np.nan)
    assert rollback.restore_checkpoint(live) == ((11, 11), 11)
    assert all(np.all(a == 11.0) for a in live)


def test_a_copy_with_non_finite_or_exploded_weights_is_not_kept():
    rollback, live = Rollback(), arrays(1.0)
    rollback.save(live, (0, 0))
    assert rollback.keep_as_checkpoint(0, n_weights=2)
    rollback.save(arrays(np.inf), (1, 1))
    assert not rollback.keep_as_checkpoint(1, n_weights=2, growth_limit=10.0)
    rollback.save(arrays(50.0), (2, 2))
    assert not rollback.keep_as_checkpoint(2, n_weights=2, growth_limit=10.0)
    rollback.save(arrays(-9.0), (3, 3))
    assert rollback.keep_as_checkpoint(3, n_weights=2, growth_limit=10.0)
    assert rollback.checkpoint[2:] == (3, 9.0)


def test_a_checkpoint_for_other_arrays_is_not_restored():
    rollback = Rollback()
    rollback.save(arrays(), (0, 0))
    rollback.keep_as_checkpoint(0, n_weights=2)
    assert rollback.restore_checkpoint([np.zeros(3, np.float32)]) is None
    rollback.drop_checkpoint()
    assert rollback.restore_checkpoint(arrays()) is None


def test_the_loss_watch_needs_a_level_and_leaves_orders_of_magnitude_to_spare():
    watch = LossWatch()
    assert not watch.exploded(1e6, softmax=False) and not watch.healthy(2.0)
    assert watch.exploded(1.5e3, softmax=True)          # logits thousands apart
    for k in range(LossWatch.MIN_STEPS):
        watch.add(2.0 + 0.1 * (k % 3))
    assert watch.level == 2.1
    assert watch.healthy(6.0) and not watch.healthy(7.0)
    assert not watch.exploded(2000.0, softmax=False) and watch.exploded(2200.0, softmax=False)
    watch.clear()
    assert watch.level is None
