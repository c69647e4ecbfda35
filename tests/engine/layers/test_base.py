"""The Workspace: buffers reused per (owner, name), and gone with their owner."""

import gc
import weakref

import numpy as np

from engine.layers.base import Workspace


class Owner:
    """Stands for a layer: any object that takes weak references."""


def test_buffers_are_reused_per_owner_and_name_and_remade_for_a_new_shape():
    ws, a, b = Workspace(), Owner(), Owner()
    out = ws.empty(a, "out", (2, 3), np.float32)
    assert ws.empty(a, "out", (2, 3), np.float32) is out
    assert ws.empty(a, "dx", (2, 3), np.float32) is not out
    assert ws.empty(b, "out", (2, 3), np.float32) is not out
    assert ws.empty(a, "out", (4, 3), np.float32).shape == (4, 3)      # replaced, not added
    aligned = ws.empty_aligned(a, "grid", (5, 7), np.float32)
    assert aligned.ctypes.data % Workspace.ALIGN_BYTES == 0
    assert ws.empty_aligned(a, "grid", (5, 7), np.float32) is aligned
    assert ws.owners() == 2 and ws.nbytes() == 4 * (12 + 6 + 6 + 35)


def test_an_owners_buffers_go_when_the_owner_dies():
    ws = Workspace()
    keep, layers = Owner(), [Owner() for _ in range(5)]
    ws.empty(keep, "out", (10,), np.float64)
    for layer in layers:
        ws.empty(layer, "out", (1000,), np.float64)
        ws.empty_aligned(layer, "grid", (1000,), np.float64)
    assert ws.owners() == 6
    del layers, layer
    # Refcounting frees them at once: no gc pass needed.
    assert ws.owners() == 1 and ws.nbytes() == 80


def test_owners_in_reference_cycles_go_at_the_next_collection():
    ws = Workspace()
    owner = Owner()
    owner.me = owner
    ws.empty(owner, "out", (100,), np.float32)
    del owner
    gc.collect()
    assert ws.owners() == 0 and ws.nbytes() == 0


def test_a_new_owner_that_reuses_a_dead_ones_id_gets_fresh_buffers():
    # CPython hands a freed object's memory (and so its id) to the next object of that size:
    # keyed by id alone, the new owner was given the dead one's buffer, contents and all.
    ws = Workspace()
    reused = 0
    for _ in range(50):
        owner = Owner()
        old_id, old = id(owner), ws.empty(owner, "out", (4,), np.float32)
        old[:] = 7
        del owner
        owner = Owner()
        if id(owner) == old_id:
            reused += 1
            assert ws.empty(owner, "out", (4,), np.float32) is not old
        del owner
    assert reused > 0, "no id was reused: the test proved nothing"
    assert ws.owners() == 0


def test_an_owner_does_not_keep_its_workspace_alive_and_clear_drops_everything():
    ws, owner = Workspace(), Owner()
    ws.empty(owner, "out", (3,), np.float32)
    alive = weakref.ref(ws)
    del ws
    assert alive() is None              # freed at once: no cycle through the owner's callback
    ws = Workspace()
    ws.empty(owner, "out", (3,), np.float32)
    ws.clear()
    assert ws.owners() == 0 and ws.nbytes() == 0
    assert ws.empty(owner, "out", (3,), np.float32).shape == (3,)
    del owner
    assert ws.owners() == 0
