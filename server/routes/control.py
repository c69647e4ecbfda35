"""The presenter's run controls: pause, resume, one step, reset, restart the learning-rate
schedule; the example the network view shows; and hyperparameter changes.

"step" runs exactly one training step and leaves the run paused (pausing it first when it
was training). "reset" starts training again unless the presenter had paused the run (then
it stays paused, and the log says so). "restart_schedule" makes the schedule count from the
current step (its warmup and decay start over). A learning rate in PATCH /api/params is the
rate the next step uses: a step or cosine schedule (or a warmup) that would scale it
restarts from the current step, without warmup, and the log says so; settings carry
"schedule_start". Changes are applied between steps by the worker, all or nothing. Bodies
are the models of server/models.py (read and checked by server/json_route.py first).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.auth import PRESENTER
from server.json_route import JSONBodyRoute
from server.models import ControlBody, ExampleBody, ParamsBody
from server.runtime import command

router = APIRouter(prefix="/api", tags=["control"], route_class=JSONBodyRoute)


@router.post("/control", dependencies=[PRESENTER],
             summary="pause | resume | step | reset | restart_schedule")
async def post_control(request: Request, body: ControlBody):
    return await command(request, "control", body.action)


@router.put("/example", dependencies=[PRESENTER],
            summary="show one test image in everyone's network view ({index: null}: cycle)")
async def put_example(request: Request, body: ExampleBody):
    return await command(request, "example", body.index)


@router.patch("/params", dependencies=[PRESENTER],
              summary="change hyperparameters and training options")
async def patch_params(request: Request, body: ParamsBody):
    settings = await command(request, "params", body.given())
    return {"settings": settings}
