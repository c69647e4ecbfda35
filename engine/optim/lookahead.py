"""Lookahead: a slow copy of the weights that the training weights are pulled back to.

Every `lookahead_every` updates (counted by the optimizer's schedule clock t):

    slow = decay * slow + (1 - decay) * w        # an exponential moving average of w ...
    w    = slow                                  # ... that the net then continues from

This is airbench94's "lookahead" (an EMA of the weights copied back into the net), with its
ramp: the decay rises as decay(t) = lookahead * min(1, t / total_steps)^3, from 0 (no pull)
at the start of the schedule to the full value at its end, so the averaging weighs most on the
last, low-rate stretch of a run. total_steps is the schedule's own length (the one a cosine or
linear schedule decays over; `convnet-demo train --minutes` sizes it from the measured speed).

The net's batch-norm statistics are averaged and copied back too, as airbench94 does with its
whole state dict: statistics that follow the fast weights would not fit the slow ones.

At the end of a run (`convnet-demo train`) one last pull-back averages in the updates made
since the one before (Lookahead.finish).

Memory: one copy of the parameters and statistics, made when the lookahead starts. The slow
copy is not saved in snapshots: a run that loads one (or turns lookahead on) starts its slow
copy from the weights it has then, which is exactly the state just after a pull-back.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _pull_back(param, slow, decay):
    # slow = decay * slow + (1 - decay) * w;  w = slow
    w, s = param.reshape(param.size), slow.reshape(slow.size)
    keep = w.dtype.type(decay)
    take = w.dtype.type(1.0 - decay)   # in float64 first, as NumPy would
    for i in range(w.size):
        si = keep * s[i] + take * w[i]
        s[i] = si
        w[i] = si


def lookahead_decay(hp, t: int) -> float:
    """The decay of a pull-back after `t` updates of the schedule (0 with lookahead off)."""
    if hp.lookahead == 0.0:
        return 0.0
    progress = min(1.0, t / hp.total_steps)
    return hp.lookahead * progress ** 3


class Lookahead:
    """The slow copy of a net's arrays (parameters and statistics, in place, in order)."""

    def __init__(self, arrays: Iterable[np.ndarray]) -> None:
        self.arrays = list(arrays)
        self.slow = [np.array(a, copy=True) for a in self.arrays]

    def due(self, hp, t: int) -> bool:
        """Whether the update that made the schedule's clock `t` ends with a pull-back."""
        return hp.lookahead > 0.0 and t > 0 and t % hp.lookahead_every == 0

    def pull_back(self, decay: float) -> None:
        """Average the arrays into the slow copy with this decay, and copy it back."""
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay!r}")
        for arr, slow in zip(self.arrays, self.slow):
            _pull_back(arr, slow, decay)

    def restart(self) -> None:
        """The slow copy becomes the arrays as they are (after a rollback or a load)."""
        for arr, slow in zip(self.arrays, self.slow):
            np.copyto(slow, arr)

    def finish(self, hp, t: int) -> None:
        """The end of a run after `t` updates: one last pull-back, unless the last update
        just made one, so the net ends on the slow weights. airbench94 ends with decay 1,
        dropping the at most 4 updates since its last pull-back; with pull-backs 80 updates
        apart those are averaged in with the decay they would have had."""
        if t > 0 and not self.due(hp, t):
            self.pull_back(lookahead_decay(hp, t))
