"""Hostile values into every field: only the module's own error (naming the field) comes out,
never OverflowError, TypeError, KeyError, IndexError, ZeroDivisionError, MemoryError...
(generated with hypothesis), and engine.values itself."""

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import values
from engine.formats.convnetjs import ConvNetJSError, export_convnetjs, import_convnetjs
from engine.optim import OPTIMIZERS, Hyperparams, OptimError, Optimizer
from engine.optim.hyperparams import CONVNETJS_OPTIONS, from_convnetjs
from engine.formats.snapshot import SnapshotError, snapshot_from_json, snapshot_to_json
from engine.spec.net_spec import LAYER_KEYS, SpecError, parse_spec
from engine.train.trainer import Trainer, TrainError, TrainOptions
from tests.builders import BN_LAYERS, learnable_folder, open_folder, tiny_net

# Integers beyond a float's range; 10**5000 is also beyond the digits str() will write.
huge = st.tuples(st.sampled_from([309, 400, 4300, 5000]), st.sampled_from([1, -1])).map(
    lambda e: e[1] * 10 ** e[0])
NAN_LIKE = ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "1" + "0" * 400, "3", "",
            "0x10", "\u0000", "3.0"]
scalars = st.one_of(
    huge,
    st.sampled_from([2**1024, -(2**1024) - 1]),
    st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 3.0, 0.5, 1e308, -1e308, 5e-324, 1e-300, 2**53 + 1, 2**63]),
    st.booleans(),
    st.none(),
    st.sampled_from(NAN_LIKE),
    st.text(max_size=8),
)
hostile = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8,
) | st.sampled_from([[[[[[[[[[[]]]]]]]]]], {"": {"": {"": {}}}}, list(range(2000))])

FUZZ = settings(derandomize=True, deadline=None, max_examples=300, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def only(error_type, call, *args, **kwargs):
    """Call; a refusal must be `error_type` (a ValueError) whose text can be printed."""
    try:
        return call(*args, **kwargs)
    except error_type as exc:
        assert isinstance(exc, ValueError)
        assert str(exc)
        return exc


# --- engine.values ---------------------------------------------------------------------------

def test_values_never_raise_and_tell_numbers_apart():
    assert values.real(10**400) is None and values.real(True) is None
    assert values.real(float("nan")) is None and values.real("1") is None
    assert values.real(3) == 3.0 and values.real(0.5) == 0.5
    assert values.integer(3) == 3 and values.integer(3.0) is None and values.integer(True) is None
    assert values.in_range(5, 0, 10) and not values.in_range(10**400, 0, 10)
    assert values.show(10**5000) == "an integer of about 5,001 digits"
    assert values.show(list(range(100))) == "a list of 100 items"
    deep = []
    for _ in range(5000):
        deep = [deep]
    assert values.show(deep).startswith("[[[") or values.show(deep) == "a list"
    assert values.show("x" * 1000).endswith("...") and len(values.show("x" * 1000)) == 40
    assert values.show_repr("a") == "'a'" and values.show(float("inf")) == "Infinity"
    long = values.parse_int("-" + "7" * 5000)
    assert isinstance(long, values.LongInteger) and long.negative and long.digits == 5000
    assert values.real(long) is None and values.integer(long) is None
    assert values.show(long) == "an integer of 5,000 digits"
    assert values.parse_int("9" * 309) == int("9" * 309)


# --- specs -----------------------------------------------------------------------------------

INPUT = {"type": "input", "out_sx": 6, "out_sy": 6, "out_depth": 4}
EXAMPLES = {
    "conv": {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "activation": "relu",
             "drop_prob": 0.1},
    "fc": {"type": "fc", "num_neurons": 4, "activation": "maxout", "group_size": 2},
    "pool": {"type": "pool", "sx": 2, "stride": 2, "mode": "avg"},
    "global_avg_pool": {"type": "global_avg_pool"},
    "relu": {"type": "relu"}, "sigmoid": {"type": "sigmoid"}, "tanh": {"type": "tanh"},
    "leaky_relu": {"type": "leaky_relu", "alpha": 0.1},
    "gelu": {"type": "gelu"},
    "scale": {"type": "scale", "factor": 0.5},
    "maxout": {"type": "maxout", "group_size": 2},
    "dropout": {"type": "dropout", "drop_prob": 0.5},
    "batchnorm": {"type": "batchnorm", "eps": 1e-5, "momentum": 0.1, "scale": False,
                  "lr_mul": 8.0, "l2_decay_mul": 1.0},
    "lrn": {"type": "lrn", "k": 2.0, "n": 3, "alpha": 1e-4, "beta": 0.75},
    "residual": {"type": "residual", "layers": [{"type": "conv", "sx": 3, "filters": 4,
                                                 "pad": 1}], "projection": "auto"},
    "concat": {"type": "concat", "branches": [[{"type": "conv", "sx": 1, "filters": 2}],
                                              [{"type": "relu"}]]},
    "softmax": {"type": "softmax", "num_classes": 3},
    "svm": {"type": "svm", "num_classes": 3},
    "regression": {"type": "regression", "num_neurons": 2},
}
SPEC_FIELDS = [(t, key) for t in LAYER_KEYS if t != "input" for key in ("type",) + LAYER_KEYS[t]]
SPEC_FIELDS += [("input", key) for key in ("type",) + LAYER_KEYS["input"]]


def spec_with(layer_type, key, value):
    if layer_type == "input":
        layers = [dict(INPUT, **{key: value}), {"type": "softmax", "num_classes": 2}]
    elif layer_type in ("softmax", "svm", "regression"):
        layers = [INPUT, dict(EXAMPLES[layer_type], **{key: value})]
    else:
        layers = [INPUT, dict(EXAMPLES[layer_type], **{key: value}),
                  {"type": "softmax", "num_classes": 2}]
    return layers


def test_every_example_layer_is_valid():
    for layer_type in EXAMPLES:
        layers = spec_with(layer_type, "type", layer_type)
        parse_spec(layers)


@FUZZ
@given(field=st.sampled_from(SPEC_FIELDS), value=hostile)
def test_hostile_values_in_spec_fields_give_a_spec_error_naming_the_field(field, value):
    layer_type, key = field
    for budget in ({}, {"budget": None}):
        result = only(SpecError, parse_spec, spec_with(layer_type, key, value), **budget)
        if isinstance(result, SpecError) and result.field is not None and result.layer == "1":
            assert result.field in str(result)


@FUZZ
@given(value=hostile, position=st.integers(0, 2))
def test_hostile_layer_objects_and_documents_give_a_spec_error(value, position):
    layers = spec_with("conv", "type", "conv")
    layers[position] = value
    only(SpecError, parse_spec, layers)
    only(SpecError, parse_spec, value)
    only(SpecError, parse_spec, {"layers": layers, "name": value})


@FUZZ
@given(key=scalars, value=hostile)
def test_hostile_keys_in_layers_and_documents_give_a_spec_error(key, value):
    try:
        hash(key)
    except TypeError:
        return
    layers = spec_with("conv", "type", "conv")
    layers[1] = {**layers[1], key: value}
    only(SpecError, parse_spec, layers)
    only(SpecError, parse_spec, {"layers": spec_with("relu", "type", "relu"), key: value})


def test_the_raw_layer_count_is_bounded_before_any_layer_is_read():
    import time
    start = time.perf_counter()
    many = [INPUT] + [{"type": "relu"}] * 130_000 + [{"type": "softmax", "num_classes": 2}]
    error = only(SpecError, parse_spec, many, budget=None)
    assert isinstance(error, SpecError) and "at most 2,000 layer objects" in str(error)
    nested = [INPUT, {"type": "residual", "layers": [{"type": "relu"}] * 2500},
              {"type": "softmax", "num_classes": 2}]
    assert "layer objects" in str(only(SpecError, parse_spec, nested, budget=None))
    assert time.perf_counter() - start < 1.0


# --- hyperparameters and trainer options ---------------------------------------------------

HP_FIELDS = [f for f in Hyperparams.__dataclass_fields__]


@FUZZ
@given(name=st.sampled_from(HP_FIELDS), value=hostile)
def test_hostile_hyperparameters_give_an_optim_error_naming_the_field(name, value):
    result = only(OptimError, Hyperparams.from_dict, {name: value})
    if isinstance(result, OptimError):
        assert result.field == name and name in str(result)
    only(OptimError, from_convnetjs, {name: value} if name in CONVNETJS_OPTIONS else {})


@FUZZ
@given(key=hostile, value=hostile)
def test_hostile_keys_give_an_optim_error(key, value):
    try:
        hash(key)
    except TypeError:
        return
    only(OptimError, Hyperparams.from_dict, {key: value})
    only(OptimError, from_convnetjs, {key: value})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("values")
    return open_folder(learnable_folder(root / "photos", 4, 2), root / "cache")


@pytest.fixture(scope="module")
def trainer(dataset):
    return Trainer(tiny_net(BN_LAYERS, seed=1), dataset, {"method": "adam", "batch_size": 4},
                   TrainOptions(seed=1))


OPTION_NAMES = list(TrainOptions.__dataclass_fields__)


@settings(FUZZ, max_examples=400)
@given(name=st.sampled_from(HP_FIELDS + OPTION_NAMES + ["nonsense"]), value=hostile)
def test_hostile_settings_give_a_train_error_naming_the_field(trainer, name, value):
    before = trainer.settings()
    result = only(TrainError, trainer.apply, {name: value})
    if isinstance(result, TrainError):
        assert trainer.settings() == before
        if name != "seed":
            assert result.field == name and name in str(result)
    elif name in ("batch_size", "test_every", "validate_every"):
        trainer.apply({name: before[name]})
    option = only(TrainError, TrainOptions(**{name: value}).check) if name in OPTION_NAMES \
        else None
    if isinstance(option, TrainError):
        assert option.field == name


# --- snapshots -------------------------------------------------------------------------------

def _snapshot_doc():
    net = tiny_net(BN_LAYERS, seed=1)
    optimizer = Optimizer(net.named_params(), method="adam")
    doc = snapshot_to_json(net, optimizer_state=optimizer.state_dict(), step=3,
                           preprocess={"mean": [120.0, 121.0, 122.0], "std": [60.0] * 3},
                           classes=["cat", "dog", "frog"],
                           metrics={"test": {"accuracy": 0.5, "step": 3}},
                           meta={"examples_seen": 12, "epoch": 0.5, "wall_seconds": 1.0})
    return json.loads(json.dumps(doc))


DOC = _snapshot_doc()


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, path + (i,))


SNAPSHOT_PATHS = [p for p in _paths(DOC) if p] + [
    ("extra",), ("meta", "epoch"), ("optimizer", "t"), ("metrics", "test", "classes"),
    ("metrics", "test", "confusion"), ("metrics", "test", "per_class")]


def _set(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _array(dtype, values_):
    import base64
    data = np.array(values_, dtype)
    return {"__array__": {"dtype": dtype, "shape": list(data.shape),
                          "data": base64.b64encode(data.tobytes()).decode()}}


# Arrays may stand anywhere in the optimizer state, metrics and meta.
snapshot_values = hostile | st.sampled_from([_array("float32", [1.0, 2.0]),
                                             _array("int64", [3]), _array("float64", 1e39),
                                             _array("float32", [[0.5]])])


@settings(FUZZ, max_examples=500)
@given(path=st.sampled_from(SNAPSHOT_PATHS), value=snapshot_values)
def test_hostile_snapshot_fields_give_a_snapshot_error_and_loads_are_all_or_nothing(
        trainer, path, value):
    snapshot = only(SnapshotError, snapshot_from_json, _set(DOC, path, value))
    if isinstance(snapshot, SnapshotError):
        return
    # Accepted by the reader: the trainer takes it in full, or refuses it and changes nothing.
    before = ([a.copy() for _, a, _ in trainer.net.named_params()], trainer.step_count,
              trainer.normalization, trainer.settings())
    result = only(TrainError, trainer.load, snapshot)
    if isinstance(result, TrainError):
        after = ([a for _, a, _ in trainer.net.named_params()], trainer.step_count,
                 trainer.normalization, trainer.settings())
        assert after[1:] == before[1:]
        assert all(np.array_equal(a, b) for a, b in zip(after[0], before[0]))


@FUZZ
@given(path=st.sampled_from(SNAPSHOT_PATHS), value=hostile)
def test_hostile_snapshot_objects_give_a_train_error_from_load(trainer, path, value):
    # A Snapshot made elsewhere (not through the reader): Trainer.load checks it itself.
    snapshot = snapshot_from_json(DOC)
    if "__array__" in path:                     # decoded: the array is the value
        path = path[:path.index("__array__")]
    head = path[0]
    if head in ("meta", "metrics", "preprocess", "optimizer") and len(path) > 1:
        part = _set({head: getattr(snapshot, head)}, path, value)[head]
        setattr(snapshot, head, part)
    elif head == "step":
        snapshot.step = value
    else:
        return
    before = ([a.copy() for _, a, _ in trainer.net.named_params()], trainer.step_count)
    result = only(TrainError, trainer.load, snapshot)
    if isinstance(result, TrainError):
        assert trainer.step_count == before[1]
        assert all(np.array_equal(a, b) for (_, a, _), b in zip(trainer.net.named_params(),
                                                                 before[0]))


# --- ConvNetJS -------------------------------------------------------------------------------

CONVNETJS_DOC = json.loads(json.dumps(export_convnetjs(tiny_net(seed=2))))
CONVNETJS_PATHS = [p for p in _paths(CONVNETJS_DOC) if p]


@FUZZ
@given(path=st.sampled_from(CONVNETJS_PATHS), value=hostile)
def test_hostile_convnetjs_fields_give_a_convnetjs_error(path, value):
    only(ConvNetJSError, import_convnetjs, _set(CONVNETJS_DOC, path, value))


def test_methods_are_all_covered():
    assert set(OPTIMIZERS) >= {"sgd", "adam"}
