"""Runs: the listing (GET /api/runs), forks (POST /api/fork), the active run (PUT
/api/runs/active), deleting a run (DELETE /api/runs/{id}), and races (POST, GET and DELETE
/api/race). The worker does the work (server/runs.py, server/race.py); bodies are the models
of server/models.py. A run's history is GET /api/history?run=ID (server/routes/state.py)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from server.auth import PRESENTER, PUBLIC
from server.errors import ApiError
from server.json_route import JSONBodyRoute
from server.models import ActiveRunBody, ForkBody, NetBody, RaceBody
from server.routes.past import RUN_PATTERN
from server.runtime import command, runtime

router = APIRouter(prefix="/api", tags=["runs"], route_class=JSONBodyRoute)


def published_runs(request: Request) -> dict:
    runs = runtime(request).published.runs
    if runs is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    return runs


@router.get("/runs", dependencies=[PUBLIC],
            summary="every run: id, name, parent, from_step, params, status, last metrics")
async def get_runs(request: Request):
    return published_runs(request)


@router.post("/fork", dependencies=[PRESENTER],
             summary="fork a run at a checkpoint with changed settings; the fork is active")
async def post_fork(request: Request, body: ForkBody):
    params = body.params.given() if body.params is not None else {}
    return await command(request, "fork", (body.step, params, body.run))


@router.put("/runs/active", dependencies=[PRESENTER], summary="make a run the active one")
async def put_active(request: Request, body: ActiveRunBody):
    return await command(request, "activate", body.run)


@router.delete("/runs/{run_id}", dependencies=[PRESENTER],
               summary="delete a run that is not active (frees its memory)")
async def delete_run(request: Request, run_id: str = Path(pattern=RUN_PATTERN)):
    return await command(request, "delete_run", run_id)


def race_specs(body: RaceBody, max_layers: int, published) -> list[dict] | None:
    """The race's runs with each "net" parsed and checked against the data (in a thread)."""
    from server.routes.net import _fit_problem, parse_net_body
    if body.runs is None:
        return None
    entries = []
    for i, run in enumerate(body.runs):
        entry = {"name": run.name, "params": run.params.given() if run.params else {},
                 "net": None}
        if run.net is not None:
            try:
                spec, _ = parse_net_body(NetBody(spec=run.net), max_layers)
            except ApiError as exc:
                raise ApiError(exc.status, exc.code, f"runs[{i}].net: {exc.detail}",
                               field=f"runs.{i}.net", layer=exc.extra.get("layer")) from None
            problem = _fit_problem(spec, published)
            if problem:
                raise ApiError(422, "net_mismatch", f"runs[{i}].net: {problem}",
                               field=f"runs.{i}.net")
            entry["net"] = spec
        entries.append(entry)
    return entries


@router.post("/race", dependencies=[PRESENTER],
             summary="race 2-6 runs from the same initial weights (default: six optimizers)")
async def post_race(request: Request, body: RaceBody):
    rt = runtime(request)
    entries = await run_in_threadpool(race_specs, body, rt.settings.max_spec_layers,
                                      rt.published)
    target = body.steps if body.equal == "steps" else body.seconds
    return await command(request, "race", (entries, body.equal, target))


@router.get("/race", dependencies=[PUBLIC], summary="the race: each run's figures, the winner")
async def get_race(request: Request):
    return {"race": published_runs(request).get("race")}


@router.delete("/race", dependencies=[PRESENTER], summary="stop the race")
async def delete_race(request: Request):
    return await command(request, "stop_race")
