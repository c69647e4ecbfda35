"""The presenter's net editor: PUT /api/net swaps the net; POST /api/net/check validates and
computes the calculator table as the presenter types (changing nothing).

Body: {"spec": SPEC} or {"preset": NAME}. SPEC is a layer list, a {"layers": ...} document,
or the editor's JSON text as a string (then JSON mistakes are reported by line and column).
A preset brings its training defaults (engine.presets.training_defaults); a custom spec keeps
the current settings.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from server.auth import PRESENTER
from server.bodies import read_json_object, refuse_unknown_keys
from server.errors import ApiError
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["net"])

BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"spec": {}, "preset": {"type": "string"}},
    "description": "exactly one of spec (layer list, {layers: ...} or JSON text) or preset"}}}}}


def _spec_error(exc) -> ApiError:
    return ApiError(422, "invalid_spec", str(exc), layer=exc.layer, field=exc.field)


def parse_net_body(body: dict[str, Any], budget="default"):
    """{"spec"} | {"preset"} -> (NetSpec, preset name or None); ApiError otherwise."""
    from engine.presets import PRESETS, TRAINABLE, load_preset
    from engine.spec import DEFAULT_BUDGET, SpecError, decode_spec_text, parse_spec
    budget = DEFAULT_BUDGET if budget == "default" else budget
    refuse_unknown_keys(body, {"spec", "preset"}, "{\"spec\": ...} or {\"preset\": NAME}")
    if ("spec" in body) == ("preset" in body):
        raise ApiError(422, "invalid_request", "send exactly one of \"spec\" or \"preset\"",
                       field="spec")
    if "preset" in body:
        name = body["preset"]
        if not isinstance(name, str) or name not in PRESETS:
            raise ApiError(422, "unknown_preset", f"no preset {name!r}; presets: "
                           f"{', '.join(PRESETS)}", field="preset")
        try:
            return load_preset(name, budget=budget), name
        except SpecError as exc:
            if name not in TRAINABLE:
                raise ApiError(422, "not_trainable", f"{name} is a case study for the "
                               f"calculator, too big to train here: {exc}",
                               field="preset") from None
            raise _spec_error(exc) from None
    spec = body["spec"]
    try:
        value = decode_spec_text(spec) if isinstance(spec, str) else spec
        return parse_spec(value, budget=budget), None
    except SpecError as exc:
        raise _spec_error(exc) from None


def _fit_problem(spec, published) -> str | None:
    """Why this data set cannot train the spec (None: it can)."""
    height, width = published.image_size
    if tuple(spec.input_shape) != (3, height, width):
        c, h, w = spec.input_shape
        return (f"the net's input is {w}x{h}x{c} but the images are {width}x{height}x3: set "
                f"the input layer to out_sx {width}, out_sy {height}, out_depth 3")
    if spec.loss_type == "regression":
        return "the data set has class labels: end the net with softmax or svm"
    if published.classes and spec.num_classes != len(published.classes):
        return (f"the net ends in {spec.num_classes} classes but the data set has "
                f"{len(published.classes)}: set num_classes to {len(published.classes)}")
    return None


@router.put("/net", dependencies=[PRESENTER], openapi_extra=BODY_DOC,
            summary="replace the net (fresh weights) by a spec or a preset")
async def put_net(request: Request):
    body = await read_json_object(request, runtime(request).settings.max_json_bytes)
    spec, preset = await run_in_threadpool(parse_net_body, body)
    net = await command(request, "set_net", (spec, preset))
    return {"net": net}


@router.post("/net/check", dependencies=[PRESENTER], openapi_extra=BODY_DOC,
             summary="validate a spec and compute its calculator table; changes nothing")
async def check_net(request: Request):
    from engine.calculator import summarize
    body = await read_json_object(request, runtime(request).settings.max_json_bytes)
    published = runtime(request).published
    try:
        spec, _ = await run_in_threadpool(parse_net_body, body, None)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return {"ok": False, **exc.body()}
    summary = summarize(spec)
    try:
        await run_in_threadpool(parse_net_body, body)
    except ApiError as exc:       # valid shapes, but over the training budget
        return {"ok": False, **exc.body(), "summary": summary}
    problem = _fit_problem(spec, published)
    if problem:
        return {"ok": False, "error": "net_mismatch", "detail": problem, "summary": summary}
    return {"ok": True, "summary": summary}
