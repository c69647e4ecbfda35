"""The trainer's options (augmentation, metric windows, evaluation cadence), its error, and
the check that a net fits a data set."""

from __future__ import annotations

from dataclasses import dataclass


class TrainError(ValueError):
    """A change the trainer refuses; `field` names the setting when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainOptions:
    flip: bool = True                 # augmentation: random horizontal flip
    shift: int = 2                    # augmentation: random shift, +-pixels (ConvNetJS: 2)
    validate_every: int = 50          # steps between validation batches
    validation_batch: int = 100       # images per validation batch
    test_every: int = 0               # steps between whole-test-set evaluations (0: by epoch)
    test_chunk: int = 0               # test images evaluated per step (0: all in one go)
    window: int = 50                  # steps in the moving averages
    history_points: int = 1000
    seed: int = 0

    def check(self) -> TrainOptions:
        for name in ("flip",):
            if not isinstance(getattr(self, name), bool):
                raise TrainError(f"{name} must be true or false", name)
        for name, lo, hi in (("shift", 0, 8), ("validate_every", 1, 10**6),
                             ("validation_batch", 1, 10000), ("test_every", 0, 10**9),
                             ("test_chunk", 0, 10**6), ("window", 1, 10000),
                             ("history_points", 4, 100000), ("seed", 0, 2**32 - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise TrainError(f"{name} must be an integer in {lo}..{hi}, got {value!r}", name)
        return self


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
