"""The presenter's run controls: pause, resume, one step, reset; and hyperparameter changes.

"step" runs exactly one training step and leaves the run paused (pausing it first when it
was training). Changes are applied between steps by the worker, all or nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.auth import PRESENTER
from server.bodies import read_json_object, refuse_unknown_keys
from server.commands import ACTIONS
from server.errors import ApiError
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["control"])

CONTROL_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["action"],
    "properties": {"action": {"type": "string", "enum": list(ACTIONS)}}}}}}}
PARAMS_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "settings to change, e.g. {\"learning_rate\": 0.01}; "
    "names as in /api/state's settings"}}}}}


@router.post("/control", dependencies=[PRESENTER], openapi_extra=CONTROL_DOC,
             summary="pause | resume | step | reset")
async def post_control(request: Request):
    body = await read_json_object(request, runtime(request).settings.max_json_bytes)
    refuse_unknown_keys(body, {"action"}, "{\"action\": ...}")
    action = body.get("action")
    if action not in ACTIONS:
        raise ApiError(422, "invalid_action", f"action must be one of {', '.join(ACTIONS)}, "
                       f"got {action!r}", field="action")
    return await command(request, "control", action)


EXAMPLE_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["index"],
    "properties": {"index": {"type": ["integer", "null"]}}}}}}}


@router.put("/example", dependencies=[PRESENTER], openapi_extra=EXAMPLE_DOC,
            summary="show one test image in everyone's network view ({index: null}: cycle)")
async def put_example(request: Request):
    body = await read_json_object(request, runtime(request).settings.max_json_bytes)
    usage = "{\"index\": K} for test image K, or {\"index\": null} to cycle through the classes"
    refuse_unknown_keys(body, {"index"}, usage)
    if "index" not in body:
        raise ApiError(422, "invalid_request", f"send {usage}", field="index")
    index = body["index"]
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise ApiError(422, "invalid_example", f"index must be an integer or null, got "
                       f"{index!r}", field="index")
    return await command(request, "example", index)


@router.patch("/params", dependencies=[PRESENTER], openapi_extra=PARAMS_DOC,
              summary="change hyperparameters and training options")
async def patch_params(request: Request):
    body = await read_json_object(request, runtime(request).settings.max_json_bytes)
    if not body:
        raise ApiError(422, "invalid_setting", "send at least one setting to change, e.g. "
                       "{\"learning_rate\": 0.01}")
    settings = await command(request, "params", body)
    return {"settings": settings}
