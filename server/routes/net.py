"""The presenter's net editor: PUT /api/net swaps the net; POST /api/net/check validates and
computes the calculator table as the presenter types (changing nothing).

Body (server/models.py NetBody): {"spec": SPEC} or {"preset": NAME}. SPEC is a layer list, a
{"layers": ...} document, or the editor's JSON text as a string (then JSON mistakes are
reported by line and column). A preset brings its training defaults
(engine.presets.training_defaults); a custom spec keeps the current settings.

A spec body holds at most settings.max_spec_layers layer objects (blocks' layers included),
counted before any layer is read; parsing, the calculator table and its JSON run in a
thread, so a big spec never holds the event loop (other requests, the streams) still.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from server.auth import PRESENTER
from server.errors import ApiError, engine_refusal
from server.json_route import JSONBodyRoute
from server.jsonenc import dumps
from server.models import NetBody
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["net"], route_class=JSONBodyRoute)


def _spec_error(exc) -> ApiError:
    return ApiError(422, "invalid_spec", str(exc), layer=getattr(exc, "layer", None),
                    field=getattr(exc, "field", None))


def count_layers(value: Any, limit: int) -> int:
    """Layer objects (dicts with a "type") in a parsed spec, counting stops past `limit`."""
    count, todo = 0, [value]
    while todo and count <= limit:
        item = todo.pop()
        if isinstance(item, dict):
            count += "type" in item
            todo.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            todo.extend(v for v in item if isinstance(v, (dict, list)))
    return count


def parse_net_body(body: NetBody, max_layers: int, budget="default"):
    """NetBody -> (NetSpec, preset name or None); ApiError otherwise. Runs in a thread."""
    from engine.presets import TRAINABLE, load_preset
    from engine.spec.net_spec import DEFAULT_BUDGET, decode_spec_text, parse_spec
    budget = DEFAULT_BUDGET if budget == "default" else budget
    if body.preset is not None:
        try:
            return load_preset(body.preset, budget=budget), body.preset
        except ValueError as exc:
            if not engine_refusal(exc):
                raise
            if body.preset not in TRAINABLE:
                raise ApiError(422, "not_trainable", f"{body.preset} is a case study for the "
                               f"calculator, too big to train here: {exc}",
                               field="preset") from None
            raise _spec_error(exc) from None
    try:
        value = decode_spec_text(body.spec) if isinstance(body.spec, str) else body.spec
        if count_layers(value, max_layers) > max_layers:
            raise ApiError(422, "invalid_spec", f"the spec has more than {max_layers:,} layers; "
                           f"this server takes at most {max_layers:,}", field="spec")
        return parse_spec(value, budget=budget), None
    except ValueError as exc:
        if not engine_refusal(exc):
            raise
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


@router.put("/net", dependencies=[PRESENTER],
            summary="replace the net (fresh weights) by a spec or a preset")
async def put_net(request: Request, body: NetBody):
    max_layers = runtime(request).settings.max_spec_layers
    spec, preset = await run_in_threadpool(parse_net_body, body, max_layers)
    net = await command(request, "set_net", (spec, preset))
    return {"net": net}


def check_report(body: NetBody, max_layers: int, published) -> bytes:
    """The check's answer, encoded (runs in a thread)."""
    from engine.calculator import summarize
    try:
        spec, _ = parse_net_body(body, max_layers, None)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return dumps({"ok": False, **exc.body()}).encode()
    summary = summarize(spec)
    try:
        parse_net_body(body, max_layers)
    except ApiError as exc:       # valid shapes, but over the training budget
        return dumps({"ok": False, **exc.body(), "summary": summary}).encode()
    problem = _fit_problem(spec, published)
    if problem:
        return dumps({"ok": False, "error": "net_mismatch", "detail": problem,
                      "summary": summary}).encode()
    return dumps({"ok": True, "summary": summary}).encode()


@router.post("/net/check", dependencies=[PRESENTER],
             summary="validate a spec and compute its calculator table; changes nothing")
async def check_net(request: Request, body: NetBody):
    rt = runtime(request)
    data = await run_in_threadpool(check_report, body, rt.settings.max_spec_layers,
                                   rt.published)
    return Response(data, media_type="application/json")
