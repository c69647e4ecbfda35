import json
import math

import numpy as np
import pytest

from engine.optim import FIELDS, OPTIMIZERS, SCHEDULES, Hyperparams, OptimError, from_convnetjs


def test_defaults_are_convnetjs_and_json_able():
    hp = Hyperparams()
    assert (hp.method, hp.learning_rate, hp.momentum, hp.ro, hp.beta1, hp.beta2) == \
        ("sgd", 0.01, 0.9, 0.95, 0.9, 0.999)
    assert hp.l1_decay == hp.l2_decay == 0.0 and hp.eps is None
    d = hp.to_dict()
    assert list(d) == list(FIELDS)
    assert Hyperparams.from_dict(json.loads(json.dumps(d))) == hp


def test_values_are_normalised():
    hp = Hyperparams(learning_rate=1, momentum=np.float32(0.5), batch_size=np.int64(8))
    assert type(hp.learning_rate) is float and type(hp.momentum) is float
    assert type(hp.batch_size) is int and hp.batch_size == 8


def test_frozen_and_replace_validates():
    hp = Hyperparams()
    with pytest.raises(AttributeError):
        hp.learning_rate = 1.0  # type: ignore[misc]
    assert hp.replace(learning_rate=0.5).learning_rate == 0.5
    with pytest.raises(OptimError):
        hp.replace(learning_rate=-0.5)
    assert hp.learning_rate == 0.01


# field, bad value, text the message must contain
BAD_VALUES = [
    ("learning_rate", 0, "learning_rate must be a finite number > 0, got 0"),
    ("learning_rate", -1e-3, "> 0"),
    ("learning_rate", math.inf, "> 0"),
    ("learning_rate", math.nan, "> 0"),
    ("learning_rate", "0.1", "learning_rate must be a number > 0, got '0.1' (str)"),
    ("learning_rate", True, "got True (bool)"),
    ("learning_rate", None, "got None (NoneType)"),
    ("momentum", 1.0, "momentum must be a finite number in [0, 1), got 1.0"),
    ("momentum", -0.1, "in [0, 1)"),
    ("momentum", [0.9], "momentum must be a number in [0, 1)"),
    ("ro", 1, "ro must be a finite number in [0, 1)"),
    ("beta1", 1.0, "beta1 must be a finite number in [0, 1)"),
    ("beta2", 1.5, "beta2 must be a finite number in [0, 1)"),
    ("eps", 0.0, "eps must be a finite number > 0"),
    ("eps", -1e-8, "> 0"),
    ("eps", math.inf, "> 0"),
    ("eps", "tiny", "eps must be a number > 0"),
    ("l1_decay", -1e-4, "l1_decay must be a finite number >= 0"),
    ("l2_decay", math.nan, "l2_decay must be a finite number >= 0"),
    ("l2_decay", False, "l2_decay must be a number >= 0, got False (bool)"),
    ("batch_size", 0, "batch_size must be an integer in 1..1024, got 0 (int)"),
    ("batch_size", 1025, "1..1024"),
    ("batch_size", 4.0, "batch_size must be an integer in 1..1024, got 4.0 (float)"),
    ("batch_size", True, "got True (bool)"),
    ("batch_size", "4", "got '4' (str)"),
    ("warmup_steps", -1, "warmup_steps must be an integer in 0..1000000000"),
    ("warmup_steps", 1.5, "warmup_steps must be an integer"),
    ("warmup_from", 1.0, "warmup_from must be a finite number in [0, 1), got 1.0"),
    ("warmup_from", -0.2, "in [0, 1)"),
    ("warmup_from", None, "warmup_from must be a number in [0, 1)"),
    ("step_size", 0, "step_size must be an integer in 1..1000000000"),
    ("total_steps", 0, "total_steps must be an integer in 1..1000000000"),
    ("gamma", 0.0, "gamma must be a finite number in (0, 1], got 0.0"),
    ("gamma", 1.5, "in (0, 1]"),
    ("min_lr_factor", 1.5, "min_lr_factor must be a finite number in [0, 1]"),
    ("min_lr_factor", -0.1, "in [0, 1]"),
    ("lookahead", 1.0, "lookahead must be a finite number in [0, 1), got 1.0"),
    ("lookahead", -0.5, "in [0, 1)"),
    ("lookahead", "0.77", "lookahead must be a number in [0, 1)"),
    ("lookahead_every", 0, "lookahead_every must be an integer in 1..1000000, got 0"),
    ("lookahead_every", 5.0, "got 5.0 (float)"),
    ("method", "rmsprop", "method 'rmsprop' is unknown; known: sgd, momentum, nesterov, "
                          "adagrad, windowgrad, adadelta, adam"),
    ("method", None, "method must be a string, one of: sgd, momentum"),
    ("method", "Adam", "is unknown"),
    ("schedule", "exponential", "schedule 'exponential' is unknown; known: constant, step, "
                                "cosine, linear"),
    ("schedule", 3, "schedule must be a string, one of: constant, step, cosine, linear"),
]


@pytest.mark.parametrize("field, value, text", BAD_VALUES)
def test_bad_values_are_refused_naming_field_and_range(field, value, text):
    for make in (lambda: Hyperparams(**{field: value}),
                 lambda: Hyperparams.from_dict({field: value}),
                 lambda: Hyperparams().replace(**{field: value})):
        with pytest.raises(OptimError) as info:
            make()
        assert isinstance(info.value, ValueError)
        assert info.value.field == field
        assert text in str(info.value)


def test_every_field_has_a_bad_value_test():
    assert {f for f, _, _ in BAD_VALUES} == set(FIELDS)


def test_unknown_names_list_every_choice():
    with pytest.raises(OptimError) as info:
        Hyperparams(method="lbfgs")
    assert all(name in str(info.value) for name in OPTIMIZERS)
    with pytest.raises(OptimError) as info:
        Hyperparams(schedule="onecycle")
    assert all(name in str(info.value) for name in SCHEDULES)


def test_unknown_hyperparameter_names_are_refused():
    for make in (lambda: Hyperparams.from_dict({"lr": 0.1}),
                 lambda: Hyperparams().replace(lr=0.1)):
        with pytest.raises(OptimError, match="unknown hyperparameter 'lr'; known: method, "
                                             "learning_rate") as info:
            make()
        assert info.value.field == "lr"


def test_from_dict_needs_a_mapping():
    with pytest.raises(OptimError, match="must be an object, got list"):
        Hyperparams.from_dict([("learning_rate", 0.1)])


def test_cosine_needs_total_steps_beyond_warmup():
    with pytest.raises(OptimError, match=r"total_steps must be greater than warmup_steps "
                                         r"\(100\) for the cosine schedule, got 100") as info:
        Hyperparams(schedule="cosine", warmup_steps=100, total_steps=100)
    assert info.value.field == "total_steps"
    Hyperparams(schedule="step", warmup_steps=100, total_steps=100)  # irrelevant there


def test_boundary_values_are_accepted():
    Hyperparams(momentum=0.0, ro=0.0, beta1=0.0, beta2=0.0, l1_decay=0.0, gamma=1.0,
                min_lr_factor=1.0, batch_size=1024, warmup_steps=0, step_size=1, eps=1e-30)


# --- ConvNetJS trainer options ----------------------------------------------------------------
def test_from_convnetjs_cifar_demo_options():
    hp = from_convnetjs({"method": "adadelta", "batch_size": 4, "l2_decay": 0.0001})
    assert hp.method == "adadelta" and hp.batch_size == 4
    assert hp.learning_rate == 1.0  # ConvNetJS's adadelta ignores learning_rate
    assert hp.l2_decay == pytest.approx(0.0001 / 4)


def test_from_convnetjs_sgd_means_momentum_unless_zero():
    hp = from_convnetjs({})
    assert (hp.method, hp.momentum, hp.learning_rate, hp.batch_size) == ("momentum", 0.9,
                                                                         0.01, 1)
    assert from_convnetjs({"method": "sgd", "momentum": 0.0}).method == "sgd"
    assert from_convnetjs({"method": "nesterov", "momentum": 0.5}).method == "nesterov"
    assert from_convnetjs({"method": "adam", "eps": 1e-6}).eps == 1e-6


def test_from_convnetjs_refuses_unknown_and_bad_options():
    with pytest.raises(OptimError, match="unknown ConvNetJS trainer option 'warmup_steps'"):
        from_convnetjs({"warmup_steps": 3})
    with pytest.raises(OptimError, match="momentum must be") as info:
        from_convnetjs({"momentum": "high"})
    assert info.value.field == "momentum"
    with pytest.raises(OptimError, match="must be an object"):
        from_convnetjs("adadelta")
