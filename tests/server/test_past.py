"""server/past.py's helpers: the nearest checkpoint to a step (a binary search) agrees with a
plain scan of the whole list, ties going to the earlier checkpoint."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.past import checkpoint_answer


@given(steps=st.lists(st.integers(0, 10_000), min_size=1, max_size=60, unique=True),
       step=st.integers(0, 10_500))
def test_the_nearest_checkpoint_is_the_one_a_scan_finds(steps, step):
    kept = tuple({"id": k, "step": s} for k, s in enumerate(sorted(steps)))
    scanned = min(kept, key=lambda c: (abs(c["step"] - step), c["step"]))
    assert checkpoint_answer(kept, step) == scanned


def test_a_tie_goes_to_the_earlier_checkpoint():
    kept = ({"id": 0, "step": 10}, {"id": 1, "step": 20})
    assert checkpoint_answer(kept, 15)["id"] == 0
    assert checkpoint_answer(kept, 16)["id"] == 1
    assert checkpoint_answer(kept, 0)["id"] == 0 and checkpoint_answer(kept, 99)["id"] == 1
