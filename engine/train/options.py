"""The trainer's options (augmentation, metric windows, evaluation cadence), its error, and
the check that a net fits a data set."""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.augment import SHIFT_FILLS, Augmentation
from engine.train.evaluation import TTA_MODES
from engine.values import show


class TrainError(ValueError):
    """A change the trainer refuses; `field` names the setting when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainOptions:
    flip: bool | str = True           # augmentation: random horizontal flip; "alternate":
                                      # derandomised (engine/data/augment.py)
    shift: int = 2                    # augmentation: random shift, +-pixels (ConvNetJS: 2)
    shift_fill: str = "zero"          # what a shift uncovers: "zero" or "reflect"
    tta: str = "none"                 # test-time augmentation of the whole-test-set
                                      # evaluations (engine/train/evaluation.py)
    validate_every: int = 50          # steps between validation batches
    validation_batch: int = 100       # images per validation batch
    test_every: int = 0               # steps between whole-test-set evaluations (0: by epoch)
    test_chunk: int = 0               # test images evaluated per step (0: all in one go)
    window: int = 50                  # steps in the moving averages
    history_points: int = 1000
    seed: int = 0

    def check(self) -> TrainOptions:
        if not isinstance(self.flip, bool) and self.flip != "alternate":
            raise TrainError(f"flip must be true, false or \"alternate\", got {show(self.flip)}",
                             "flip")
        for name, allowed in (("shift_fill", SHIFT_FILLS), ("tta", TTA_MODES)):
            if not isinstance(getattr(self, name), str) or getattr(self, name) not in allowed:
                raise TrainError(f"{name} must be one of {', '.join(allowed)}, got "
                                 f"{show(getattr(self, name))}", name)
        for name, lo, hi in (("shift", 0, 8), ("validate_every", 1, 10**6),
                             ("validation_batch", 1, 10000), ("test_every", 0, 10**9),
                             ("test_chunk", 0, 10**6), ("window", 1, 10000),
                             ("history_points", 4, 100000), ("seed", 0, 2**32 - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise TrainError(f"{name} must be an integer in {lo}..{hi}, got {show(value)}",
                                 name)
        return self

    @property
    def augmentation(self) -> Augmentation:
        """What the training batches get (call after check)."""
        return Augmentation(self.flip, self.shift, self.shift_fill)


OPTION_FIELDS = set(TrainOptions.__dataclass_fields__) - {"seed"}


def check_net_fits(spec, dataset) -> None:
    """TrainError unless the net takes the data set's images and ends in its classes."""
    c_h_w = (3,) + tuple(dataset.image_size)
    if tuple(spec.input_shape) != c_h_w:
        c, h, w = spec.input_shape
        raise TrainError(f"the net's input is {w}x{h}x{c} but the data set's images are "
                         f"{c_h_w[2]}x{c_h_w[1]}x3: set the input layer to out_sx "
                         f"{c_h_w[2]}, out_sy {c_h_w[1]}, out_depth 3", "input")
    if spec.loss_type == "regression":
        raise TrainError("the data set has class labels: end the net with softmax or svm, "
                         "not regression", "loss")
    classes = len(dataset.class_names)
    if spec.num_classes != classes:
        raise TrainError(f"the net ends in {spec.num_classes} classes but the data set has "
                         f"{classes}: set num_classes to {classes}", "num_classes")


# --- the training budget ------------------------------------------------------------------
# Measured: RSS after two training steps (Adam) minus RSS before building the net, over the
# calculator's training figure (every layer's output and its gradient, float32): convnetjs at
# batch 256 1.60, cifar_small 256 1.57, cifar_resnet 64 / 256 1.78 / 1.84, a 3x3 64-64-128
# net at 128 1.57. The rest is kernel scratch (padded inputs, output grids, padded gradients)
# that the calculator leaves out; an evaluation pass (outputs only) needs about half.
ACTIVATION_FACTOR = 1.9
# Float32 copies of the parameters a run holds: weights, gradients, two optimizer slots, the
# rollback and the divergence checkpoint (weights and slots each), the frozen copy the
# periodic test evaluates, the optimizer's scratch, lookahead's slow copy.
PARAM_COPIES = 13
EVAL_BATCH = 250          # images per evaluation batch, unless the budget needs fewer
EVAL_SHARE = 0.25         # of max_bytes, at most, for an evaluation batch's buffers


@dataclass(frozen=True)
class TrainBudget:
    """What one training run may take. max_bytes: training memory (parameters x their copies
    + batch x stored activations x ACTIVATION_FACTOR + an evaluation batch); max_step_flops:
    arithmetic per training step (3 x forward FLOPs x batch: forward, backward-data and
    backward-weights). The defaults admit every shipped trainable preset at batch sizes up to
    about 300 (cifar_resnet: 308 by memory, 372 by FLOPs) and keep a step to a few seconds on
    a laptop's two cores (~30 GFLOP/s); a server passes its own."""

    max_bytes: int = 3_000_000_000
    max_step_flops: int = 60_000_000_000


DEFAULT_TRAIN_BUDGET = TrainBudget()


@dataclass(frozen=True)
class TrainingCost:
    """A spec's training figures from the calculator (bytes and FLOPs)."""

    fixed_bytes: int            # parameters x PARAM_COPIES, batch-norm statistics
    bytes_per_image: float      # training activations, scratch included
    eval_bytes_per_image: float
    step_flops_per_image: int   # 3 x forward FLOPs
    eval_batch: int             # what an evaluation batch may hold under the budget

    def bytes_at(self, batch: int) -> float:
        return (self.fixed_bytes + batch * self.bytes_per_image
                + self.eval_batch * self.eval_bytes_per_image)

    def largest_batch(self, budget: TrainBudget) -> int:
        by_memory = (budget.max_bytes - self.bytes_at(0)) // self.bytes_per_image
        by_flops = budget.max_step_flops // max(1, self.step_flops_per_image)
        return int(max(0, min(by_memory, by_flops)))


def training_cost(spec, budget: TrainBudget = DEFAULT_TRAIN_BUDGET) -> TrainingCost:
    from engine.calculator import FLOAT_BYTES, summarize
    summary = summarize(spec)
    per_image = summary["memory"]["training_bytes_per_image"] * ACTIVATION_FACTOR
    eval_per_image = per_image / 2
    buffers = sum(row["buffers"] for row in summary["layers"])
    eval_batch = int(max(1, min(EVAL_BATCH, budget.max_bytes * EVAL_SHARE // eval_per_image)))
    return TrainingCost((PARAM_COPIES * summary["params"] + 2 * buffers) * FLOAT_BYTES,
                        per_image, eval_per_image, 3 * summary["flops"], eval_batch)


def check_budget(spec, batch_size: int, budget: TrainBudget, field: str) -> TrainingCost:
    """The spec's TrainingCost, or a TrainError (naming `field`: "batch_size" when the batch
    changes, "net" when the net does) with the figures and the largest batch that fits."""
    cost = training_cost(spec, budget)
    largest = cost.largest_batch(budget)
    memory, flops = cost.bytes_at(batch_size), cost.step_flops_per_image * batch_size
    if memory <= budget.max_bytes and flops <= budget.max_step_flops:
        return cost
    needs, allows = [], []
    if memory > budget.max_bytes:
        needs.append(f"about {_gb(memory)} for training ({_gb(batch_size * cost.bytes_per_image)}"
                     " of it activations)")
        allows.append(_gb(budget.max_bytes))
    if flops > budget.max_step_flops:
        needs.append(f"about {flops / 1e9:,.0f} GFLOP per training step (3 x "
                     f"{cost.step_flops_per_image / 3e9:,.2f} GFLOP forward per image)")
        allows.append(f"{budget.max_step_flops / 1e9:,.0f} GFLOP per step")
    need = (f"batch {batch_size} needs {' and '.join(needs)}; this server allows "
            f"{' and '.join(allows)}")
    if largest >= 1:
        fix = f"the largest batch that fits is {largest}"
    else:
        fix = ("this net cannot train here at any batch size: use fewer filters or neurons, "
               "a smaller input or more stride")
    subject = "" if field == "batch_size" else "this net: "
    raise TrainError(f"{subject}{need}: {fix}", field)


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"
