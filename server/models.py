"""The JSON bodies the API takes, as Pydantic models: exact types (strict: 3.0 is no integer,
"3" no number, true neither), bounds, enums and no unknown keys, so /openapi.json documents
every body exactly and a refused body names its field.

The models check shapes and ranges; the engine still checks what only it knows (a spec's
arithmetic, a cosine schedule's warmup against its length) and refuses with its own errors.
Each refusal carries a code: the field's (`FIELD_CODES`), or a custom error type raised here.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.functional_validators import PlainValidator
from pydantic_core import PydanticCustomError

from engine.optim import OPTIMIZERS, SCHEDULES
from engine.optim.hyperparams import MAX_BATCH_SIZE, MAX_STEPS
from engine.presets import PRESETS
from engine.formats.pretrained import DEFAULT_PRETRAINED, PRETRAINED
from server.challenge import ID_PATTERN as CHALLENGE_ID_PATTERN
from server.commands import ACTIONS
from server.questions import KINDS as POLL_KINDS, LAYER_KINDS as POLL_LAYER_KINDS
from server.questions import MAX_OPTION_CHARS, MAX_OPTIONS, MAX_QUESTION_CHARS, MIN_OPTIONS

# GET /api/history answers every kept point: this bounds its size (about 200 bytes a point).
MAX_HISTORY_POINTS = 5000


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False,
                              frozen=True)

    def given(self) -> dict[str, Any]:
        """The fields the client sent, as plain values."""
        return self.model_dump(exclude_unset=True)


Action = Literal[ACTIONS]  # type: ignore[valid-type]


class ControlBody(Body):
    action: Action


class ExampleBody(Body):
    index: Annotated[int, Field(ge=0, description="a test image's position")] | None = Field(
        description="null: cycle through one image per class again")


def _real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
          hi_open: bool = False, doc: str = "") -> Any:
    bounds = {("gt" if lo_open else "ge"): lo} if lo is not None else {}
    if hi is not None:
        bounds["lt" if hi_open else "le"] = hi
    return Annotated[float, Field(description=doc or None, **bounds)] | None


def _int(lo: int, hi: int, doc: str = "") -> Any:
    return Annotated[int, Field(ge=lo, le=hi, description=doc or None)] | None


class ParamsBody(Body):
    """Hyperparameters (engine/optim/hyperparams.py) and training options
    (engine/train/options.py) to change; at least one. Names as in /api/state's settings."""

    method: Literal[tuple(OPTIMIZERS)] | None = None  # type: ignore[valid-type]
    learning_rate: _real(0, lo_open=True) = None
    momentum: _real(0, 1, hi_open=True) = None
    ro: _real(0, 1, hi_open=True) = None
    beta1: _real(0, 1, hi_open=True) = None
    beta2: _real(0, 1, hi_open=True) = None
    eps: _real(0, lo_open=True, doc="null: the rule's default") = None
    l1_decay: _real(0) = None
    l2_decay: _real(0) = None
    batch_size: _int(1, MAX_BATCH_SIZE) = None
    schedule: Literal[tuple(SCHEDULES)] | None = None  # type: ignore[valid-type]
    warmup_steps: _int(0, MAX_STEPS) = None
    warmup_from: _real(0, 1, doc="the warmup's start, as a factor of learning_rate") = None
    step_size: _int(1, MAX_STEPS) = None
    gamma: _real(0, 1, lo_open=True) = None
    total_steps: _int(1, MAX_STEPS) = None
    min_lr_factor: _real(0, 1) = None
    lookahead: _real(0, 1, hi_open=True, doc="0: off; else the slow weights' decay") = None
    lookahead_every: _int(1, 10**6, "updates between pull-backs to the slow weights") = None
    flip: bool | Literal["alternate"] | None = None
    shift: _int(0, 8) = None
    shift_fill: Literal["zero", "reflect"] | None = None
    tta: Literal["none", "flip", "flip_translate"] | None = None
    validate_every: _int(1, 10**6) = None
    validation_batch: _int(1, 10000) = None
    test_every: _int(0, 10**9, "0: after every epoch") = None
    test_chunk: _int(0, 10**6, "0: the whole test set in one step") = None
    window: _int(1, 10000) = None
    history_points: _int(4, MAX_HISTORY_POINTS) = None

    # null is a value only for eps (the rule's default); elsewhere it is refused
    NULLABLE: ClassVar[frozenset[str]] = frozenset({"eps"})

    @model_validator(mode="after")
    def _some_and_no_nulls(self) -> ParamsBody:
        if not self.model_fields_set:
            raise PydanticCustomError("invalid_setting", "send at least one setting to "
                                      "change, e.g. {\"learning_rate\": 0.01}")
        for name in sorted(self.model_fields_set - self.NULLABLE):
            if getattr(self, name) is None:
                raise PydanticCustomError("invalid_setting", "{name} must not be null",
                                          {"name": name, "field": name})
        return self


def _spec_value(value: Any) -> Any:
    if isinstance(value, (list, dict, str)):
        return value
    raise PydanticCustomError("invalid_spec", "spec must be a layer list, a {{\"layers\": "
                              "[...]}} document or the editor's JSON text, got {kind}",
                              {"kind": type(value).__name__, "field": "spec"})


_LAYER = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}},
          "description": "a layer object with ConvNetJS's keys (README: Net specs)"}
Spec = Annotated[Any, PlainValidator(_spec_value), WithJsonSchema({"oneOf": [
    {"type": "array", "items": _LAYER},
    {"type": "object", "required": ["layers"],
     "properties": {"layers": {"type": "array", "items": _LAYER}}},
    {"type": "string", "description": "the spec as JSON text (errors by line and column)"},
]})]


class NetBody(Body):
    """Exactly one of spec or preset."""

    spec: Spec = None
    preset: Literal[tuple(PRESETS)] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _exactly_one(self) -> NetBody:
        if len(self.model_fields_set) != 1 or self.given().get("preset", "") is None:
            raise PydanticCustomError("invalid_request", "send exactly one of \"spec\" or "
                                      "\"preset\"", {"field": "spec"})
        return self


class PretrainedBody(Body):
    name: Literal[tuple(PRETRAINED)] = DEFAULT_PRETRAINED  # type: ignore[valid-type]


class ForkBody(Body):
    """Fork a run at its checkpoint nearest `step`, with changed settings (none: the same)."""

    step: Annotated[int, Field(ge=0, le=2**53, description="the step to fork at (the "
                                                           "nearest checkpoint's)")]
    params: ParamsBody | None = Field(None, description="settings to change, named as in "
                                      "/api/state's settings")
    run: Annotated[str, Field(pattern=r"^r[0-9]{1,6}$")] | None = Field(
        None, description="the run to fork (default: the active one)")


class ActiveRunBody(Body):
    run: Annotated[str, Field(pattern=r"^r[0-9]{1,6}$", description="a run's id")]


class RaceRunBody(Body):
    name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    params: ParamsBody | None = None
    net: Spec = Field(None, description="a spec for this run (default: the current net)")


class RaceBody(Body):
    """2-6 runs from the same initial weights (default: the lecture's six optimizers),
    trained in turns for equal steps or equal training time each."""

    runs: Annotated[list[RaceRunBody], Field(min_length=2, max_length=6)] | None = None
    equal: Literal["steps", "time"] = "steps"
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class ChallengeBody(Body):
    """An answer to an image of GET /api/challenge (server/challenge.py)."""

    id: Annotated[str, Field(pattern=CHALLENGE_ID_PATTERN, description="the image's id")]
    label: Annotated[str, Field(min_length=1, max_length=100, description="a class name")]
    nickname: Annotated[str, Field(max_length=100, description="shown on the leaderboard; "
                                   "checked by server.challenge.clean_nickname")] | None = None


POLL_LAYER_INDEX = r"^[0-9]{1,4}(\.(layers|shortcut|branches\.[0-9]{1,3})\.[0-9]{1,4}){0,8}$"
OptionText = Annotated[str, Field(min_length=1, max_length=MAX_OPTION_CHARS)]


def _invalid(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_question", f"{field}: {message}", {"field": field})


class PollBody(Body):
    """A question to ask. Layer kinds name a layer by the calculator table's index (an
    integer, or "5.layers.0" inside a block); predict may name a test image (default: one
    at random); custom brings its text, 2-6 options and, if it has one, the right option."""

    kind: Literal[POLL_KINDS]  # type: ignore[valid-type]
    layer: Annotated[int, Field(ge=0, le=9999)] | Annotated[
        str, Field(pattern=POLL_LAYER_INDEX, max_length=80)] | None = None
    index: Annotated[int, Field(ge=0, description="predict: a test image's position")] | None = None
    question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)] | None = None
    options: Annotated[list[OptionText], Field(min_length=MIN_OPTIONS,
                                               max_length=MAX_OPTIONS)] | None = None
    answer: Annotated[int, Field(ge=0, le=MAX_OPTIONS - 1)] | None = None

    @model_validator(mode="after")
    def _fits_the_kind(self) -> PollBody:
        sent = self.model_fields_set - {"kind"}
        allowed = ({"layer"} if self.kind in POLL_LAYER_KINDS
                   else {"index"} if self.kind == "predict"
                   else {"question", "options", "answer"})
        for name in sorted(sent - allowed):
            raise _invalid(name, f"a {self.kind} question takes no {name}")
        if self.kind in POLL_LAYER_KINDS and self.layer is None:
            raise _invalid("layer", f"a {self.kind} question needs the layer it asks about")
        if self.kind == "custom":
            if self.question is None or not self.question.strip():
                raise _invalid("question", "type the question")
            if self.options is None:
                raise _invalid("options", f"give {MIN_OPTIONS}-{MAX_OPTIONS} options")
            texts = [o.strip() for o in self.options]
            for i, text in enumerate(texts):
                if not text:
                    raise _invalid(f"options.{i}", "an option cannot be blank")
                if text in texts[:i]:
                    raise _invalid(f"options.{i}", f"the same option twice: {text!r}")
            if self.answer is not None and self.answer >= len(texts):
                raise _invalid("answer", f"the right option must be 0..{len(texts) - 1}")
        return self


class AnswerBody(Body):
    """An answer to the open live question (server/routes/polls.py)."""

    option: Annotated[int, Field(ge=0, le=99, description="the option's position")]
    poll: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$",
                               description="the question's id (refused once another "
                                           "question replaced it)")] | None = None


# The code a refusal of each field carries (the page shows `detail` next to `field`).
FIELD_CODES = {"action": "invalid_action", "index": "invalid_example",
               **{name: "invalid_conv" for name in ("w", "h", "f", "s", "p", "c_in", "c_out")},
               "step": "invalid_step", "run": "invalid_run", "runs": "invalid_race",
               "equal": "invalid_race", "steps": "invalid_race", "seconds": "invalid_race",
               "preset": "unknown_preset", "name": "unknown_pretrained",
               "spec": "invalid_spec",
               "id": "invalid_challenge", "label": "invalid_label", "nickname": "invalid_nickname",
               **{name: "invalid_question" for name in ("kind", "layer", "question", "options",
                                                        "answer")},
               "option": "invalid_answer", "poll": "invalid_answer",
               **{name: "invalid_setting" for name in ParamsBody.model_fields}}

# Every field name of every body, for locating an error in a nested body (server/errors.py).
BODY_FIELDS = frozenset(name for model in (ControlBody, ExampleBody, ParamsBody, NetBody,
                                           PretrainedBody, ForkBody, ActiveRunBody,
                                           RaceRunBody, RaceBody, ChallengeBody, PollBody,
                                           AnswerBody)
                        for name in model.model_fields)
