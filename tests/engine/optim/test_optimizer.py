"""The Optimizer: decay multipliers, reg loss, schedules, rule switches, state_dict, and each
rule against torch.optim when torch is installed."""

import copy
import json

import numpy as np
import pytest

from engine.optim import OPTIMIZERS, Hyperparams, OptimError, Optimizer
from tests.naive import optim as naive

DECAY = {"w": (1.0, 1.0), "b": (0.0, 0.0), "k": (0.5, 2.0)}
SHAPES = {"w": (4, 3, 2, 2), "b": (4,), "k": (5, 6)}


def make_params(rng, dtype=np.float64):
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}


def named(params):
    return [(name, arr, DECAY[name]) for name, arr in params.items()]


def with_grads(params, grads):
    return [(name, arr, grads[name], DECAY[name]) for name, arr in params.items()]


def random_grads(rng, dtype=np.float64):
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}


@pytest.mark.parametrize("method", list(OPTIMIZERS))
def test_optimizer_matches_reference_with_decay_and_schedule(method, rng):
    hp = Hyperparams(method=method, learning_rate=0.05, l1_decay=1e-2, l2_decay=1e-1,
                     warmup_steps=2, schedule="step", step_size=2, gamma=0.5)
    ref_hp = dict(hp.to_dict(), eps=hp.effective_eps)
    params = make_params(rng)
    ref = {name: arr.copy() for name, arr in params.items()}
    ref_state = {name: {} for name in params}
    opt = Optimizer(named(params), hp)
    for step in range(6):
        grads = random_grads(rng)
        kept = {name: g.copy() for name, g in grads.items()}
        reg_loss = opt.step(with_grads(params, grads))
        lr = naive.lr_schedule(step, lr=0.05, schedule="step", warmup_steps=2, step_size=2,
                               gamma=0.5)
        ref_reg = 0.0
        for name in ref:
            l1, l2 = 1e-2 * DECAY[name][0], 1e-1 * DECAY[name][1]
            ref_reg += naive.decay_loss(ref[name], l1, l2)
            g = naive.decayed_grad(ref[name], grads[name], l1, l2)
            ref[name], ref_state[name] = naive.RULES[method](ref[name], g, ref_state[name],
                                                             ref_hp, lr, step + 1)
        assert reg_loss == pytest.approx(ref_reg, rel=1e-12)
        for name in params:
            np.testing.assert_allclose(params[name], ref[name], rtol=1e-11, atol=1e-13)
            np.testing.assert_array_equal(grads[name], kept[name])  # grads are only read
    assert opt.t == opt.rule_t == 6


def test_reg_loss_without_a_step_equals_what_step_reports(rng):
    params = make_params(rng)
    opt = Optimizer(named(params), l1_decay=1e-2, l2_decay=1e-1)
    expected = opt.reg_loss(named(params))
    assert expected > 0
    assert opt.step(with_grads(params, random_grads(rng))) == pytest.approx(expected, rel=1e-14)
    assert opt.t == 1


def test_zero_multipliers_mean_no_decay():
    b = np.ones(3)
    opt = Optimizer([("b", b, (0.0, 0.0))], learning_rate=0.1, l1_decay=1.0, l2_decay=1.0)
    assert opt.step([("b", b, np.zeros(3), (0.0, 0.0))]) == 0.0
    np.testing.assert_array_equal(b, np.ones(3))


def test_float32_training_allocates_no_new_state(rng):
    params = make_params(rng, np.float32)
    opt = Optimizer(named(params), method="adam", l2_decay=1e-3)
    ids = {name: [id(a) for a in s.values()] for name, s in opt.state.items()}
    for _ in range(3):
        opt.step(with_grads(params, random_grads(rng, np.float32)))
    assert {name: [id(a) for a in s.values()] for name, s in opt.state.items()} == ids
    assert all(p.dtype == np.float32 for p in params.values())


@pytest.mark.parametrize("method", list(OPTIMIZERS))
def test_divergence_yields_non_finite_values_without_warnings(method):
    w = np.full(3, 1e30, np.float32)
    opt = Optimizer([("w", w, (1.0, 1.0))], method=method, learning_rate=1e30, l2_decay=1e10)
    for _ in range(3):
        reg_loss = opt.step([("w", w, np.full(3, 1e30, np.float32), (1.0, 1.0))])
    assert not np.isfinite(reg_loss) or not np.all(np.isfinite(w))


def test_lr_property_follows_the_schedule():
    opt = Optimizer([("w", np.ones(2), (1.0, 1.0))], learning_rate=1.0, warmup_steps=4)
    assert [opt.lr_at(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert opt.lr == 0.25
    opt.step([("w", np.ones(2), np.ones(2), (1.0, 1.0))])
    assert opt.lr == 0.5


def test_step_refuses_mismatched_params(rng):
    params = make_params(rng)
    opt = Optimizer(named(params))
    grads = random_grads(rng)
    items = with_grads(params, grads)
    with pytest.raises(ValueError, match=r"built for parameters \['w', 'b', 'k'\], step got "
                                         r"\['w', 'b'\]"):
        opt.step(items[:2])
    with pytest.raises(ValueError, match=r"gradient b: expected \(4,\) float64, got \(5,\)"):
        opt.step([items[0], ("b", params["b"], np.zeros(5), (0.0, 0.0)), items[2]])
    with pytest.raises(ValueError, match=r"parameter w: expected \(4, 3, 2, 2\) float64, got "
                                         r"\(4, 3, 2, 2\) float32"):
        opt.step([("w", params["w"].astype(np.float32), grads["w"], DECAY["w"])] + items[1:])
    # the update loops read every array flat
    k_t = np.asfortranarray(params["k"])
    with pytest.raises(ValueError, match="parameter k must be a C-contiguous array"):
        opt.step(items[:2] + [("k", k_t, grads["k"], DECAY["k"])])
    frozen = params["b"].copy()
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="parameter b is read-only"):
        opt.step([items[0], ("b", frozen, grads["b"], DECAY["b"]), items[2]])
    assert opt.t == 0
    with pytest.raises(ValueError, match="'w' appears twice"):
        Optimizer([("w", np.ones(1), (0, 0)), ("w", np.ones(1), (0, 0))])


def test_construction_from_mapping_and_changes():
    opt = Optimizer([], {"method": "adam"}, learning_rate=0.5)
    assert (opt.hp.method, opt.hp.learning_rate) == ("adam", 0.5)
    assert opt.step([]) == 0.0
    with pytest.raises(OptimError) as info:
        Optimizer([], lr=0.1)
    assert info.value.field == "lr"


# --- changing hyperparameters between steps ----------------------------------------------------
def test_set_hyperparams_is_validated_and_atomic():
    opt = Optimizer([("w", np.ones(2), (1.0, 1.0))], method="momentum")
    with pytest.raises(OptimError) as info:
        opt.set_hyperparams(learning_rate=0.5, momentum=2.0)
    assert info.value.field == "momentum"
    assert opt.hp.learning_rate == 0.01 and opt.hp.momentum == 0.9
    assert opt.set_hyperparams(learning_rate=0.5).learning_rate == 0.5


def test_switching_rules_keeps_shared_state_and_restarts_the_rest(rng):
    w = np.zeros(4)
    opt = Optimizer([("w", w, (0.0, 0.0))], method="momentum", learning_rate=0.1)
    for _ in range(3):
        opt.step([("w", w, np.ones(4), (0.0, 0.0))])
    velocity = opt.state["w"]["velocity"]
    opt.set_hyperparams(method="nesterov")
    assert opt.state["w"]["velocity"] is velocity and opt.rule_t == 3
    opt.set_hyperparams(method="windowgrad")
    assert list(opt.state["w"]) == ["mean_sq_grad"] and opt.rule_t == 0
    opt.step([("w", w, np.ones(4), (0.0, 0.0))])
    mean_sq = opt.state["w"]["mean_sq_grad"].copy()
    opt.set_hyperparams(method="adadelta")
    np.testing.assert_array_equal(opt.state["w"]["mean_sq_grad"], mean_sq)
    np.testing.assert_array_equal(opt.state["w"]["mean_sq_delta"], 0.0)
    # Adam starts with zero moments and t = 1: its first step moves by ~lr again.
    opt.set_hyperparams(method="adam", learning_rate=1e-3)
    before = w.copy()
    opt.step([("w", w, np.full(4, 0.3), (0.0, 0.0))])
    np.testing.assert_allclose(before - w, 1e-3, rtol=1e-6)
    assert opt.t == 5 and opt.rule_t == 1
    opt.set_hyperparams(method="sgd")
    assert opt.state["w"] == {}


def test_restart_schedule_moves_only_the_schedules_clock():
    w = np.zeros(2)
    opt = Optimizer([("w", w, (0.0, 0.0))], method="adam", learning_rate=0.1,
                    schedule="cosine", warmup_steps=5, total_steps=20)
    for _ in range(30):
        opt.step([("w", w, np.ones(2), (0.0, 0.0))])
    assert opt.lr == 0.0                              # the cosine has ended
    state = {k: a.copy() for k, a in opt.state["w"].items()}
    opt.restart_schedule()
    assert opt.t == 0 and opt.lr == pytest.approx(0.1 / 5)        # its warmup again
    opt.restart_schedule(warmup=False)
    assert opt.t == 5 and opt.lr == 0.1                           # exactly the base rate
    assert opt.rule_t == 30                            # Adam's bias correction goes on
    assert all(np.array_equal(state[k], a) for k, a in opt.state["w"].items())


# --- state_dict --------------------------------------------------------------------------------
def to_json_and_back(sd):
    """What a snapshot does: arrays out as (dtype, shape, values), scalars as they are."""
    enc = json.dumps(sd, default=lambda a: {"dtype": a.dtype.name, "shape": a.shape,
                                            "values": a.ravel().tolist()})

    def hook(obj):
        if set(obj) == {"dtype", "shape", "values"}:
            return np.array(obj["values"], dtype=obj["dtype"]).reshape(obj["shape"])
        return obj
    return json.loads(enc, object_hook=hook)


@pytest.mark.parametrize("method", list(OPTIMIZERS))
def test_state_dict_round_trip_is_exact(method, rng):
    params = make_params(rng, np.float32)
    opt = Optimizer(named(params), method=method, l2_decay=1e-3, schedule="cosine",
                    total_steps=20, warmup_steps=2)
    for _ in range(3):
        opt.step(with_grads(params, random_grads(rng, np.float32)))
    sd = opt.state_dict()
    assert sd["t"] == 3 and sd["hyperparams"]["method"] == method
    twin_params = {name: arr.copy() for name, arr in params.items()}
    twin = Optimizer(named(twin_params))  # default sgd: loading restores the method too
    twin.load_state_dict(to_json_and_back(sd))
    assert twin.hp == opt.hp and (twin.t, twin.rule_t) == (opt.t, opt.rule_t)
    for _ in range(3):
        grads = random_grads(rng, np.float32)
        assert opt.step(with_grads(params, grads)) == twin.step(with_grads(twin_params, grads))
    for name in params:
        np.testing.assert_array_equal(params[name], twin_params[name])
        for s in opt.state[name]:
            np.testing.assert_array_equal(opt.state[name][s], twin.state[name][s])
            assert twin.state[name][s].dtype == np.float32


def test_state_dict_holds_copies():
    w = np.zeros(2)
    opt = Optimizer([("w", w, (0.0, 0.0))], method="momentum")
    sd = opt.state_dict()
    opt.step([("w", w, np.ones(2), (0.0, 0.0))])
    assert not sd["state"]["w"]["velocity"].any()


def good_state(method="adam"):
    opt = Optimizer([("w", np.zeros((2, 3)), (1.0, 1.0)), ("b", np.zeros(2), (0.0, 0.0))],
                    method=method)
    opt.step([("w", np.zeros((2, 3)), np.ones((2, 3)), (1.0, 1.0)),
              ("b", np.zeros(2), np.ones(2), (0.0, 0.0))])
    return opt, opt.state_dict()


def edit(sd, path, value):
    sd = copy.deepcopy(sd)
    target = sd
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return sd


@pytest.mark.parametrize("path, value, field, text", [
    (("t",), -1, "t", "t must be an integer >= 0, got -1"),
    (("t",), 1.0, "t", "got 1.0"),
    (("t",), True, "t", "got True"),
    (("rule_t",), -1, "rule_t", "rule_t must be an integer in 0..1,000,000,000,000, got -1"),
    (("rule_t",), 10**13, "rule_t", "rule_t must be an integer in 0..1,000,000,000,000"),
    (("version",), 2, "version", "this reads 'convnet-demo-optimizer' version 1"),
    (("format",), "torch", "version", "optimizer state is 'torch' version 1"),
    (("extra",), 1, "optimizer", "must have exactly the keys"),
    (("state",), KeyError, "optimizer", "must have exactly the keys"),
    (("hyperparams", "learning_rate"), 0, "learning_rate", "learning_rate must be a finite"),
    (("hyperparams", "method"), "rprop", "method", "method 'rprop' is unknown"),
    (("hyperparams", "lr"), 0.1, "lr", "unknown hyperparameter 'lr'"),
    (("state", "b"), KeyError, "state", "optimizer state is for parameters ['w']; this net has "
                                        "['b', 'w']"),
    (("state", "x"), {}, "state", "for parameters ['b', 'w', 'x']"),
    (("state", "w", "first_moment"), KeyError, "state.w",
     "state of w: adam keeps ['first_moment', 'second_moment'], got ['second_moment']"),
    (("state", "w"), [], "state.w", "got list"),
    (("state", "w", "first_moment"), [[0.0] * 3] * 2, "state.w.first_moment",
     "state.w.first_moment must be a float array, got list"),
    (("state", "w", "first_moment"), np.zeros((2, 3), np.int64), "state.w.first_moment",
     "must be a float array, got int64"),
    (("state", "w", "second_moment"), np.zeros((3, 2)), "state.w.second_moment",
     "state.w.second_moment has shape (3, 2); the parameter has shape (2, 3)"),
    (("state", "b", "first_moment"), np.array([0.0, np.nan]), "state.b.first_moment",
     "contains NaN or infinite values"),
])
def test_load_state_dict_refuses_bad_state_and_changes_nothing(path, value, field, text):
    opt, sd = good_state()
    before = opt.state_dict()
    with pytest.raises(OptimError) as info:
        opt.load_state_dict(edit(sd, path, value))
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert text in str(info.value)
    after = opt.state_dict()
    assert after["hyperparams"] == before["hyperparams"] and after["t"] == before["t"]
    for name in before["state"]:
        for s in before["state"][name]:
            np.testing.assert_array_equal(after["state"][name][s], before["state"][name][s])


def test_load_state_dict_needs_state_matching_the_saved_method():
    _, sd = good_state("momentum")
    opt, _ = good_state("adam")
    opt.load_state_dict(sd)
    assert opt.hp.method == "momentum" and list(opt.state["w"]) == ["velocity"]
    sd["hyperparams"]["method"] = "adadelta"
    with pytest.raises(OptimError, match="adadelta keeps"):
        opt.load_state_dict(sd)
    with pytest.raises(OptimError, match="must be an object"):
        opt.load_state_dict([])


# --- torch.optim ------------------------------------------------------------------------------
# torch's Adagrad and RMSprop add eps outside the square root (g / (sqrt(s) + eps)), ConvNetJS's
# adagrad and windowgrad inside (g / sqrt(s + eps)); with torch eps = 0 and ours 1e-300 the two
# agree to the last bit, which compares everything else exactly.
TORCH_CASES = {
    "sgd": (lambda t, p: t.optim.SGD(p, lr=0.1, weight_decay=0.01), {}),
    "momentum": (lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.8, weight_decay=0.01),
                 {"momentum": 0.8}),
    "nesterov": (lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True,
                                          weight_decay=0.01), {"momentum": 0.8}),
    "adagrad": (lambda t, p: t.optim.Adagrad(p, lr=0.1, eps=0.0, weight_decay=0.01),
                {"eps": 1e-300}),
    "windowgrad": (lambda t, p: t.optim.RMSprop(p, lr=0.1, alpha=0.9, eps=0.0,
                                                weight_decay=0.01), {"ro": 0.9, "eps": 1e-300}),
    "adadelta": (lambda t, p: t.optim.Adadelta(p, lr=0.5, rho=0.9, eps=1e-6, weight_decay=0.01),
                 {"ro": 0.9, "eps": 1e-6, "learning_rate": 0.5}),
    "adam": (lambda t, p: t.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-8,
                                       weight_decay=0.01),
             {"beta1": 0.8, "beta2": 0.99, "eps": 1e-8}),
}


@pytest.mark.parametrize("method", list(TORCH_CASES))
def test_matches_torch_optim(method, rng):
    torch = pytest.importorskip("torch", reason="torch is not installed: "
                                                "pip install convnet-demo[reference]")
    make_torch_opt, hp = TORCH_CASES[method]
    params = make_params(rng)
    tparams = [torch.tensor(arr.copy(), requires_grad=True) for arr in params.values()]
    topt = make_torch_opt(torch, tparams)
    decay = {name: (0.0, 1.0) for name in params}
    opt = Optimizer([(n, a, decay[n]) for n, a in params.items()],
                    **{"method": method, "learning_rate": 0.1, "l2_decay": 0.01, **hp})
    for _ in range(5):
        grads = random_grads(rng)
        for tp, g in zip(tparams, grads.values()):
            tp.grad = torch.tensor(g)
        topt.step()
        opt.step([(n, a, grads[n], decay[n]) for n, a in params.items()])
    for arr, tp in zip(params.values(), tparams):
        np.testing.assert_allclose(arr, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
