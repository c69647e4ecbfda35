"""Optimizers: update rules, weight decay, learning-rate schedules, and the Optimizer that
holds their state for a net (see optimizer.py for the training-loop usage).

May import: engine.values."""

from engine.optim.errors import OptimError
from engine.optim.hyperparams import FIELDS, Hyperparams, from_convnetjs
from engine.optim.optimizer import Optimizer
from engine.optim.rules import OPTIMIZERS, Rule, decay_losses, decayed_gradient
from engine.optim.schedules import SCHEDULES, lr_at

__all__ = ["FIELDS", "OPTIMIZERS", "SCHEDULES", "Hyperparams", "OptimError", "Optimizer", "Rule",
           "decay_losses", "decayed_gradient", "from_convnetjs", "lr_at"]
