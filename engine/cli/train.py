"""`convnet-demo train`: train a net on the data set with a progress line; Ctrl-C saves."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from engine.cli import CliError
from engine.cli.common import StatusLine, add_threads_argument, open_spec, thread_tuner
from engine.cli.data import dataset_from_args
from engine.data import add_data_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a net on CIFAR-10 (or --data) and save a snapshot",
        description="Train with the same trainer the server uses. Ctrl-C saves a snapshot "
                    "and exits; the last line states the test accuracy.")
    p.add_argument("--net", help="a preset name or a JSON spec file (default: cifar_resnet; "
                                 "with --resume, the snapshot's net)")
    add_data_argument(p)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="epochs to train (default 1)")
    length.add_argument("--minutes", type=float, help="train for this many minutes")
    length.add_argument("--steps", type=int, help="train for this many steps")
    p.add_argument("--batch-size", type=int, help="images per step (preset default)")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, windowgrad, "
                                       "adadelta or adam (preset default)")
    p.add_argument("--lr", type=float, help="learning rate (preset default)")
    p.add_argument("--momentum", type=float)
    p.add_argument("--l2-decay", type=float)
    p.add_argument("--schedule", choices=["constant", "step", "cosine", "linear"],
                   help="learning-rate schedule; cosine and linear span the whole run (with "
                        "--minutes, sized from the measured speed so that they end with the "
                        "time)")
    p.add_argument("--warmup", type=int, help="linear warmup steps")
    p.add_argument("--no-augment", action="store_true", help="no flips or shifts")
    p.add_argument("--flip", choices=["random", "alternate"],
                   help="random: mirror each image with probability 1/2 (the default, but "
                        "for cifar_speedrun); alternate: at random in the first epoch, then "
                        "each image the other way round every epoch")
    p.add_argument("--shift-fill", choices=["zero", "reflect"],
                   help="what a shift uncovers: zeros (the mean colour; default) or the image "
                        "reflected (cifar_speedrun's default)")
    p.add_argument("--tta", choices=["none", "flip", "flip_translate"],
                   help="test-time augmentation of the test evaluations (see `evaluate --tta`)")
    p.add_argument("--final-tta", choices=["none", "flip", "flip_translate"],
                   help="test-time augmentation of the last evaluation only, the one the "
                        "snapshot records (default: --tta; cifar_speedrun: flip_translate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="snapshot file to write (default: <net>.snapshot.json, or "
                                 "the --resume file)")
    p.add_argument("--resume", help="snapshot file to continue from (its net, weights, "
                                    "optimizer state and step)")
    p.add_argument("--test-every", type=int, default=0,
                   help="steps between whole-test-set evaluations (default: every epoch)")
    p.add_argument("--json-log", help="append one JSON line per test evaluation to this file "
                                      "(step, epoch, minutes, accuracy, training images/s and "
                                      "the thread count)")
    add_threads_argument(p)
    p.set_defaults(func=run)


FLAG_TO_SETTING = (("optimizer", "method"), ("lr", "learning_rate"), ("momentum", "momentum"),
                   ("l2_decay", "l2_decay"), ("batch_size", "batch_size"),
                   ("schedule", "schedule"), ("warmup", "warmup_steps"))


def _overrides(args) -> dict:
    """The settings given explicitly on the command line."""
    return {key: getattr(args, flag) for flag, key in FLAG_TO_SETTING
            if getattr(args, flag) is not None}


DEFAULT_NET = "cifar_resnet"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.net import Net
    from engine.optim import OptimError
    from engine.presets import final_tta, training_defaults, training_options
    from engine.formats.snapshot import SnapshotError
    from engine.train.trainer import Trainer, TrainError, TrainOptions

    # The first step compiles kernels (or loads them from Numba's cache): not a trial step.
    tuner = thread_tuner(args.threads, skip_first=1)
    snapshot, spec, net_name = _net_to_train(args)
    out = Path(args.out or _default_out(args, net_name))
    _check_writable(out)
    dataset = dataset_from_args(args, image_size=tuple(spec.input_shape[1:]))
    overrides = _overrides(args)
    # The preset's options (cifar_speedrun's airbench94 augmentation), then the flags given.
    preset = {"flip": True, "shift_fill": "zero", "tta": "none", **training_options(net_name)}
    flip = (False if args.no_augment else preset["flip"] if args.flip is None
            else "alternate" if args.flip == "alternate" else True)
    options = TrainOptions(flip=flip, shift=0 if args.no_augment else 2,
                           shift_fill=args.shift_fill or preset["shift_fill"],
                           tta=args.tta or preset["tta"],
                           seed=args.seed, test_every=args.test_every)
    last_tta = args.final_tta or (args.tta if args.tta else final_tta(net_name))
    try:
        if snapshot is None:
            net = Net(spec, rng=np.random.default_rng(args.seed))
            trainer = Trainer(net, dataset, {**training_defaults(net_name), **overrides}, options)
        else:
            trainer = Trainer(snapshot.build_net(), dataset, training_defaults(net_name), options)
            trainer.load(snapshot)               # its optimizer, schedule position, step
            if overrides:
                trainer.apply(overrides)
        steps_per_epoch = max(1, len(dataset.train) // trainer.optimizer.hp.batch_size)
        total_steps = _total_steps(args, steps_per_epoch)
        hp = trainer.optimizer.hp
        cosine_to_time = None
        if hp.schedule in ("cosine", "linear") and (snapshot is None or "schedule" in overrides):
            # The cosine spans this run (--minutes: ten epochs until the speed is known).
            end = trainer.optimizer.t + (total_steps or 10 * steps_per_epoch)
            trainer.apply({"total_steps": max(end, hp.warmup_steps + 1)})
            if args.minutes is not None:
                cosine_to_time = CosineToTime(trainer, args.minutes)
    except (TrainError, OptimError, SnapshotError, ValueError) as exc:
        raise CliError(str(exc)) from None
    progress = Progress(total_steps, args.minutes, tuner)
    progress.first_step = trainer.step_count
    diverged = False
    start = time.monotonic()
    with StopOnCtrlC() as ctrl_c:
        try:
            while not ctrl_c.requested and not _done(trainer, total_steps, args.minutes, start,
                                                      progress.first_step):
                tuner.apply()
                result = trainer.step()
                if "batch_size" in result:     # the training part: not the test chunk's
                    tuner.record(result["batch_size"], result["seconds"])
                if "diverged" in result:
                    progress.newline()
                    print(result["diverged"]["message"], file=sys.stderr)
                    diverged = True
                    break
                if "test" in result:
                    progress.newline()
                    _print_test(result["test"], trainer, args.json_log, tuner)
                if cosine_to_time is not None:
                    cosine_to_time.update(trainer, time.monotonic() - start)
                progress.update(trainer)
        except KeyboardInterrupt:                # a second Ctrl-C: stop in the middle of a step
            ctrl_c.requested = True
    progress.newline()
    if ctrl_c.requested:
        print(f"interrupted at step {trainer.step_count:,}: saving a snapshot", file=sys.stderr)
    else:
        trainer.finish_lookahead()              # the slow weights, when lookahead is on
        test = trainer.evaluate_test(tta=last_tta)   # before saving: the snapshot records it
        _print_test(test, trainer, args.json_log, tuner)
    print(f"threads: {tuner.summary()}", file=sys.stderr)
    try:
        save_snapshot_file(out, trainer)
    except OSError as exc:
        print(f"convnet-demo train: error: cannot write {out}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(f"snapshot saved to {out}")
    if ctrl_c.requested:
        return 130
    tta = test.get("tta", "none")
    with_tta = f" (test-time augmentation: {tta})" if tta != "none" else ""
    print(f"test accuracy: {100 * test['accuracy']:.2f}%{with_tta} on {test['images']:,} images "
          f"after {trainer.step_count:,} steps ({trainer.epoch_progress:.2f} epochs, "
          f"{trainer.wall_seconds / 60:.1f} min of training)")
    return 1 if diverged else 0


def _net_to_train(args):
    """(snapshot to resume or None, NetSpec, preset name or None) from --net and --resume."""
    if not args.resume:
        spec, name = open_spec(args.net or DEFAULT_NET)
        return None, spec, name
    from engine.presets import TRAINABLE
    from engine.formats.pretrained import resolve_snapshot
    from engine.formats.snapshot import SnapshotError
    try:
        snapshot = resolve_snapshot(args.resume)
    except SnapshotError as exc:
        raise CliError(str(exc)) from None
    if args.net is not None and open_spec(args.net)[0] != snapshot.spec:
        raise CliError(f"--resume {args.resume} holds a different net than --net {args.net}; "
                       "leave out --net to continue the snapshot's own net")
    name = snapshot.spec.name if snapshot.spec.name in TRAINABLE else None
    return snapshot, snapshot.spec, name


def _default_out(args, net_name: str | None) -> str:
    """The --resume file itself (continue in place), else <net>.snapshot.json."""
    if args.resume and not args.resume.startswith("pretrained"):
        return args.resume
    stem = net_name or (Path(args.net).stem if args.net else "resumed")
    return f"{stem}.snapshot.json"


def _check_writable(out: Path) -> None:
    """Refuse an --out that cannot be written before training, not after it."""
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"--out {out}: there is no folder {folder}")
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a file name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"--out {out}: the folder {folder} is not writable")


def save_snapshot_file(out: Path, trainer) -> None:
    from engine.formats.snapshot import save_snapshot
    save_snapshot(out, trainer.net, **trainer.snapshot_kwargs())


class StopOnCtrlC:
    """The first Ctrl-C (SIGINT) asks the loop to stop after the current step, so the snapshot
    holds whole updates; a second one interrupts at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnCtrlC:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:                     # not the main thread: Ctrl-C stays as it is
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class CosineToTime:
    """--minutes with a cosine schedule: the learning rate should reach zero when the time is
    up (the last, low-rate stretch is where most of the accuracy comes from), so the cosine's
    length in steps is set from the speed measured so far, at a few moments of the run. The
    elapsed time includes the test evaluations, so their cost is counted too."""

    MOMENTS = (0.05, 0.25, 0.5, 0.75, 0.9)      # fractions of the time

    def __init__(self, trainer, minutes: float) -> None:
        self.seconds = minutes * 60
        self.first_t = trainer.optimizer.t
        self.next = 0

    def update(self, trainer, elapsed: float) -> None:
        if self.next >= len(self.MOMENTS) or elapsed < self.MOMENTS[self.next] * self.seconds:
            return
        self.next += 1
        t = trainer.optimizer.t
        rate = (t - self.first_t) / max(elapsed, 1e-9)
        end = self.first_t + round(rate * self.seconds)
        hp = trainer.optimizer.hp
        end = max(end, t + 1, hp.warmup_steps + 1)
        if end != hp.total_steps:
            trainer.apply({"total_steps": end})


def _total_steps(args, steps_per_epoch: int) -> int | None:
    if args.steps is not None:
        if args.steps < 1:
            raise CliError("--steps must be at least 1")
        return args.steps
    if args.minutes is not None:
        if not args.minutes > 0:
            raise CliError("--minutes must be positive")
        return None
    epochs = 1.0 if args.epochs is None else args.epochs
    if not epochs > 0:
        raise CliError("--epochs must be positive")
    return max(1, round(epochs * steps_per_epoch))


def _done(trainer, total_steps, minutes, start, first_step) -> bool:
    if total_steps is not None:
        return trainer.step_count - first_step >= total_steps
    return time.monotonic() - start >= minutes * 60


def _print_test(test: dict, trainer, json_log: str | None, tuner) -> None:
    tta = test.get("tta", "none")
    print(f"step {trainer.step_count:,} epoch {trainer.epoch_progress:.2f} "
          f"({trainer.wall_seconds / 60:.1f} min): test accuracy {100 * test['accuracy']:.2f}%"
          + (f" (test-time augmentation: {tta})" if tta != "none" else ""), file=sys.stderr)
    if json_log:
        with open(json_log, "a") as f:
            f.write(json.dumps({"step": trainer.step_count, "epoch": trainer.epoch_progress,
                                "minutes": trainer.wall_seconds / 60,
                                "accuracy": test["accuracy"], "tta": tta,
                                "images_per_s": trainer.metrics()["images_per_s"],
                                "threads": tuner.current}) + "\n")


class Progress:
    """The training progress line (see StatusLine: redrawn on a terminal, every 10 s when
    piped), with the thread count the tuner chose."""

    def __init__(self, total_steps: int | None, minutes: float | None, tuner) -> None:
        self.total_steps, self.minutes, self.tuner = total_steps, minutes, tuner
        self.line = StatusLine()
        self.started = time.monotonic()
        self.first_step = 0

    def update(self, trainer) -> None:
        if not self.line.due():
            return
        m = trainer.metrics()
        done = trainer.step_count - self.first_step
        elapsed = time.monotonic() - self.started
        if self.total_steps:
            frac = done / self.total_steps
            eta = elapsed * (1 - frac) / max(frac, 1e-9)
            bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
            where = f"[{bar}] {done}/{self.total_steps}"
        else:
            eta = max(0.0, self.minutes * 60 - elapsed)
            where = f"step {done}"
        self.line.show(f"{where} epoch {trainer.epoch_progress:.2f} loss {_fmt(m['loss'], 4)} "
                       f"train {_pct(m['train_acc'])} val {_pct(m['val_acc'])} "
                       f"{_fmt(m['images_per_s'], 0)} img/s, {self.tuner.label()} "
                       f"ETA {int(eta // 60)}:{int(eta % 60):02d}")

    def newline(self) -> None:
        self.line.newline()


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
