"""Optimizers: update rules, weight decay, learning-rate schedules, the Optimizer that holds
their state for a net (see optimizer.py for the training-loop usage), and lookahead.

May import: engine.values."""

from engine.optim.errors import OptimError
from engine.optim.hyperparams import FIELDS, Hyperparams, from_convnetjs
from engine.optim.lookahead import Lookahead, lookahead_decay
from engine.optim.optimizer import Optimizer
from engine.optim.rules import OPTIMIZERS, Rule, decay_losses, decayed_gradient
from engine.optim.schedules import ENDING_SCHEDULES, SCHEDULES, lr_at

__all__ = ["ENDING_SCHEDULES", "FIELDS", "OPTIMIZERS", "SCHEDULES", "Hyperparams", "Lookahead",
           "OptimError", "Optimizer", "Rule", "decay_losses", "decayed_gradient",
           "from_convnetjs", "lookahead_decay", "lr_at"]
