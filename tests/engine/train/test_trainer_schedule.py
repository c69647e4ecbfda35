"""The trainer's learning-rate schedule in a run that goes on: a typed learning rate is the
rate the next step uses (a schedule that would scale it restarts from that step), the
schedule restarts on request, and where it counts from survives snapshots and divergence."""

import pytest

from engine.optim import lr_at
from engine.formats.snapshot import dumps, loads, snapshot_to_json
from tests.engine.train.test_trainer import LINEAR_LAYERS, dataset, make_trainer  # noqa: F401

COSINE = {"method": "momentum", "learning_rate": 0.05, "batch_size": 8, "schedule": "cosine",
          "total_steps": 12, "warmup_steps": 2}


def ended(dataset, steps: int = 15, **hp):
    """A run whose cosine has ended (learning rate 0), as the shipped pretrained nets are."""
    trainer = make_trainer(dataset, hp={**COSINE, **hp})
    for _ in range(steps):
        trainer.step()
    assert trainer.optimizer.lr == 0.0
    return trainer


def rate_and_field(trainer):
    return trainer.metrics()["lr"], trainer.settings()["learning_rate"]


def test_a_typed_rate_after_the_cosine_ended_is_the_rate_used(dataset):
    trainer = ended(dataset)
    settings = trainer.apply({"learning_rate": 0.02})
    assert rate_and_field(trainer) == (0.02, 0.02)          # the stats and the field agree
    assert settings["schedule_start"] == trainer.schedule_start == 15
    assert trainer.schedule_note == ("the cosine schedule restarts at step 15, without "
                                     "warmup, so that the learning rate is 0.02 from here")
    assert trainer.history.markers[-1]["text"] == "learning_rate 0.02; schedule restarted"
    # From here the cosine decays over its length again (no warmup: it starts at 0.02).
    rates = []
    for _ in range(12):
        trainer.step()
        rates.append(trainer.optimizer.lr)
    hp = trainer.optimizer.hp
    assert rates == [lr_at(hp, t) for t in range(3, 15)]
    assert rates[0] < 0.02 and rates[-1] == 0.0 and rates == sorted(rates, reverse=True)


@pytest.mark.parametrize("hp, steps", [
    ({"schedule": "constant", "warmup_steps": 10}, 3),           # still in its warmup
    ({"schedule": "step", "step_size": 2, "gamma": 0.5, "warmup_steps": 0}, 5),
])
def test_a_typed_rate_skips_what_would_scale_it(dataset, hp, steps):
    trainer = make_trainer(dataset, hp={**COSINE, **hp})
    for _ in range(steps):
        trainer.step()
    assert trainer.optimizer.lr != 0.03
    trainer.apply({"learning_rate": 0.03})
    assert rate_and_field(trainer) == (0.03, 0.03) and trainer.schedule_start == steps
    assert "restarts at step" in trainer.schedule_note


def test_a_rate_the_schedule_already_gives_restarts_nothing(dataset):
    trainer = make_trainer(dataset, hp={**COSINE, "schedule": "constant"})
    for _ in range(4):
        trainer.step()
    trainer.apply({"learning_rate": 0.07, "momentum": 0.8})
    assert rate_and_field(trainer) == (0.07, 0.07)
    assert trainer.schedule_start == 0 and trainer.schedule_note is None
    assert trainer.history.markers[-1]["text"] == "learning_rate 0.07, momentum 0.8"
    trainer.apply({"momentum": 0.9})                     # no rate typed: nothing restarts
    assert trainer.schedule_note is None


def test_restart_schedule_starts_warmup_and_decay_over(dataset):
    trainer = ended(dataset)
    trainer.restart_schedule()
    assert trainer.schedule_start == 15 and trainer.settings()["schedule_start"] == 15
    assert trainer.optimizer.lr == pytest.approx(0.05 / 2)            # warmup step 1 of 2
    trainer.step()
    assert trainer.optimizer.lr == 0.05                                 # then the cosine


def test_a_switch_to_a_decaying_schedule_starts_it_here_and_a_length_change_does_not(dataset):
    trainer = make_trainer(dataset, hp={**COSINE, "schedule": "constant"})
    for _ in range(20):
        trainer.step()
    trainer.apply({"schedule": "cosine", "total_steps": 10})
    assert trainer.schedule_start == 20 and trainer.optimizer.lr == 0.05
    assert "the cosine schedule starts here" in trainer.schedule_note
    for _ in range(4):
        trainer.step()
    before = trainer.optimizer.t
    trainer.apply({"total_steps": 40})                   # a longer cosine, same start
    assert trainer.optimizer.t == before and trainer.schedule_start == 20
    assert trainer.schedule_note is None


def test_where_the_schedule_counts_from_survives_a_snapshot(dataset):
    trainer = ended(dataset)
    trainer.apply({"learning_rate": 0.02})
    for _ in range(3):
        trainer.step()
    snapshot = loads(dumps(snapshot_to_json(trainer.net, **trainer.snapshot_kwargs())))
    assert snapshot.meta["schedule_start"] == 15
    other = make_trainer(dataset, seed=9)
    other.load(snapshot)
    assert other.schedule_start == 15 and other.optimizer.lr == trainer.optimizer.lr
    # A snapshot from before restarts existed: its schedule started with its run.
    old = ended(dataset, steps=13)
    snapshot = loads(dumps(snapshot_to_json(old.net, **old.snapshot_kwargs())))
    del snapshot.meta["schedule_start"]
    other.load(snapshot)
    assert other.schedule_start == 0 and other.step_count == 13


def test_a_new_net_or_a_reset_starts_the_schedule_with_it(dataset):
    trainer = ended(dataset)
    trainer.set_net(trainer.net.spec)
    assert trainer.schedule_start == 15 and trainer.optimizer.t == 0
    trainer.reset()
    assert trainer.schedule_start == 0 and trainer.settings()["schedule_start"] == 0


def test_a_divergence_after_a_restart_keeps_the_restarted_schedule(dataset):
    trainer = make_trainer(dataset, LINEAR_LAYERS, hp={
        "method": "sgd", "learning_rate": 0.01, "batch_size": 8, "schedule": "cosine",
        "total_steps": 20})
    for _ in range(25):                 # the cosine ends; healthy checkpoints on the way
        trainer.step()
    assert trainer.optimizer.lr == 0.0
    trainer.apply({"learning_rate": 10.0})
    for _ in range(60):
        if "diverged" in trainer.step():
            break
    else:
        pytest.fail("lr 10 did not diverge in 60 steps")
    # Back at a checkpoint from before the restart, the schedule still counts from the
    # restart: the rate is the typed one, not the ended cosine's 0.
    assert trainer.diverged["kept_step"] <= 25
    assert rate_and_field(trainer) == (10.0, 10.0)
