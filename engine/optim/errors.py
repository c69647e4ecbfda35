"""The one error the optimizer package raises for a bad value, saying which field and why."""


class OptimError(ValueError):
    """A hyperparameter, step or saved state that cannot be used. `field` names the culprit
    (e.g. "learning_rate", "method", "state.3.w.velocity") so a form can mark it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
