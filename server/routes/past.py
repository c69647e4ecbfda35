"""Looking back: GET /api/checkpoints (a run's checkpoints), and the past frames and galleries
GET /api/frame?step=K and GET /api/gallery?step=K answer (server/routes/state.py sends those
here).

A past view is made by the worker between steps within its share of time for views
(server/worker.py, VIEW_SHARE) on a checkpoint's copy of the weights (server/past.py), and
drawn to JSON here, in a thread. Each answer is made once however many viewers ask for it at
once, and kept (at most MAX_ANSWERS, MAX_ANSWER_BYTES together): a room scrubbing the same
run asks for the same few hundred checkpoints. A requested step is answered by the nearest
checkpoint, and the answer says which (`step`, and the checkpoint's figures). Each is
gzipped once too (the compression middleware would do it again for every request), and only
the gzip is kept (a client that takes no gzip gets it unpacked): twice as many answers fit
the bound, enough for a frame and a gallery of every checkpoint of a run in a room.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from server.auth import PUBLIC
from server.errors import ApiError
from server.jsonenc import encode_once, encoded_response, gzip_only
from server.past import checkpoint_answer, example_position
from server.runtime import runtime

router = APIRouter(prefix="/api", tags=["past"])

MAX_ANSWERS = 1024           # the byte bound binds first: a frame is ~100 kB gzipped
MAX_ANSWER_BYTES = 48_000_000
MAX_DETAILS = 16             # past frames whose details routes stay answerable
MAX_LISTINGS = 16            # runs whose encoded checkpoint list is kept
MAX_STEP = 2**53
RUN_PATTERN = r"^r[0-9]{1,6}$"


class PastAnswers:
    """JSON bytes of past views by (run, kind, checkpoint id, image), each made once (a
    checkpoint never changes; a run that starts over has new ones, with new ids)."""

    def __init__(self) -> None:
        self.done: OrderedDict[tuple, tuple[bytes | None, bytes | None]] = OrderedDict()
        self.done_bytes = 0
        self.making: dict[tuple, asyncio.Future] = {}
        self.details: OrderedDict[int, object] = OrderedDict()   # frame id -> FrameDetails
        self.listings: dict[str, tuple] = {}    # run -> (its published list, encoded)

    async def get(self, key: tuple, make: Callable[[], Awaitable[tuple]]
                  ) -> tuple[bytes | None, bytes | None]:
        """(JSON bytes, their gzip or None) of the view `key`, made by `make` once."""
        if key in self.done:
            self.done.move_to_end(key)
            return self.done[key]
        making = self.making.get(key)
        if making is None:
            making = self.making[key] = asyncio.ensure_future(make())
            making.add_done_callback(lambda done: self._keep(key, done))
        # shielded: a viewer who scrubs on (and drops this request) must not cancel it for
        # the others waiting on the same checkpoint
        return await asyncio.shield(making)

    def _keep(self, key: tuple, done: asyncio.Future) -> None:
        self.making.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return
        encoded = done.result()
        self.done[key] = encoded
        self.done_bytes += _size(encoded)
        while len(self.done) > MAX_ANSWERS or self.done_bytes > MAX_ANSWER_BYTES:
            _, old = self.done.popitem(last=False)
            self.done_bytes -= _size(old)

    def keep_details(self, details) -> None:
        self.details[details.id] = details
        while len(self.details) > MAX_DETAILS:
            self.details.popitem(last=False)

    def find_details(self, frame_id: int | None):
        return None if frame_id is None else self.details.get(frame_id)


def _size(encoded: tuple[bytes | None, bytes | None]) -> int:
    return len(encoded[0] or b"") + len(encoded[1] or b"")


def past_answers(request: Request) -> PastAnswers:
    state = request.app.state
    if getattr(state, "past_answers", None) is None:
        state.past_answers = PastAnswers()
    return state.past_answers


def run_query():
    return Query(None, pattern=RUN_PATTERN, description="a run's id (GET /api/runs); left "
                 "out: the active run")


def step_query(what: str):
    return Query(None, ge=0, le=MAX_STEP, description=f"show the {what} as it was at the "
                 "checkpoint nearest this step; left out: the latest")


def kept_checkpoints(request: Request, run: str | None) -> tuple[str, tuple[dict, ...]]:
    published = runtime(request).published
    run = run or published.active_run
    kept = published.checkpoints.get(run)
    if kept is None:
        raise ApiError(404, "unknown_run", f"there is no run {run!r}; runs: "
                       f"{', '.join(sorted(published.checkpoints)) or 'none yet'}",
                       field="run")
    return run, kept


@router.get("/checkpoints", dependencies=[PUBLIC],
            summary="a run's checkpoints: step, examples, seconds, test accuracy")
async def get_checkpoints(request: Request, run: str | None = run_query()):
    run, kept = kept_checkpoints(request, run)
    # Encoded once per published list (every scrubber asks for it when touched): the list
    # is a new tuple whenever it changes, so the one encoded last is reused while it is that.
    cache = past_answers(request).listings
    encoded = cache.get(run)
    if encoded is None or encoded[0] is not kept:
        encoded = cache[run] = (kept, encode_once({"run": run, "checkpoints": list(kept)},
                                                  runtime(request).settings.gzip_min_bytes))
        while len(cache) > MAX_LISTINGS:
            cache.pop(next(iter(cache)))
    return encoded_response(request, encoded[1])


async def past_view(request: Request, kind: str, step: int, run: str | None,
                    example: int | None) -> Response:
    """The frame or gallery of the checkpoint nearest `step` of `run`, as JSON bytes. A
    checkpoint thinned away between the published list and the worker's turn is looked up
    once more in the newer list."""
    try:
        return await _past_view(request, kind, step, run, example)
    except ApiError as exc:
        if exc.code != "checkpoint_gone":
            raise
    return await _past_view(request, kind, step, run, example)


async def _past_view(request: Request, kind: str, step: int, run: str | None,
                     example: int | None) -> Response:
    rt = runtime(request)
    run, kept = kept_checkpoints(request, run)
    if not kept:
        raise ApiError(404, "no_checkpoints", f"run {run} has no checkpoints yet", field="run")
    metrics = rt.published.metrics if run == rt.published.active_run else None
    now = max(kept[-1]["step"], int(metrics["step"]) if metrics else 0)
    if step > now:
        raise ApiError(404, "unknown_step", f"run {run} is at step {now:,}: there is no step "
                       f"{step:,} to look back at (its checkpoints go from step "
                       f"{kept[0]['step']:,} to {kept[-1]['step']:,})", field="step")
    nearest = checkpoint_answer(kept, step)["id"]
    position = None
    if kind == "frame":
        if example is None:
            inspector = getattr(rt.worker.handlers, "inspector", None)
            example = example_position(inspector.pinned if inspector else None,
                                       inspector.frame_positions if inspector else [])
        images = len(rt.worker.handlers.inspector.dataset.test)
        if not 0 <= example < images:
            raise ApiError(422, "invalid_example", f"example must be a test image in "
                           f"0..{images - 1}, got {example}", field="example")
        position = example
    answers = past_answers(request)

    async def make() -> tuple[bytes | None, bytes | None]:
        view = await asyncio.wrap_future(
            rt.worker.submit_view("view", (kind, run, nearest, position)))
        return await run_in_threadpool(_encode, answers, kind, run, view,
                                       rt.settings.gzip_min_bytes)

    return encoded_response(request, await answers.get((run, kind, nearest, position), make))


def _encode(answers: PastAnswers, kind: str, run: str, view: dict,
            gzip_from: int) -> tuple[bytes | None, bytes | None]:
    checkpoint = view["checkpoint"]
    head = {"run": run, "step": checkpoint["step"], "checkpoint": checkpoint}
    if kind == "gallery":
        gallery = {k: v for k, v in view.items() if k != "checkpoint"}
        return gzip_only(encode_once({**gallery, **head}, gzip_from))
    details = view["details"]
    answers.keep_details(details)
    return gzip_only(encode_once({**head, "pinned": False, "example": view["example"],
                                  "layers": details.visuals()}, gzip_from))


def example_query():
    return Query(None, ge=0, le=MAX_STEP, description="with step: the test image the frame "
                 "shows (left out: the one the live frame shows)")
