"""Live questions: the presenter asks (POST /api/poll), anyone answers (POST /api/poll/answer,
one answer per browser per question, changeable until it closes, rate-limited per address),
the presenter closes and reveals (DELETE /api/poll); GET /api/poll is the JSON twin of what
the page shows, with this browser's own answer. The questions: server/questions.py; the room: server/polls.py.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.spec.net_spec import parse_spec
from server.auth import PRESENTER, PUBLIC
from server.errors import ApiError
from server.json_route import JSONBodyRoute
from server.models import AnswerBody, PollBody
from server.polls import PollError, PollRoom
from server.questions import (QuestionError, choices, custom_question, layer_question,
                              predict_question)
from server.runtime import command, runtime
from server.viewers import RateLimit, ensure_viewer, viewer_id
from server.visuals import image_b64

router = APIRouter(prefix="/api", tags=["polls"], route_class=JSONBodyRoute)


def room(request: Request) -> PollRoom:
    state = request.app.state
    if getattr(state, "polls", None) is None:     # made on the event loop, once per app
        settings = runtime(request).settings
        state.polls = PollRoom(runtime(request).hub, settings.poll_publish_every_s,
                               settings.poll_max_answers)
        state.poll_answers = RateLimit(settings.poll_answer_rate, settings.poll_answer_burst,
                                       settings.max_tracked_addresses)
    return state.polls


def _refused(exc: PollError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.detail, field=exc.field)


@dataclass(frozen=True)
class NetFacts:
    """The running net's normalised spec and its layer choices, made once per published net
    (arithmetic only, in a thread); replaced whole, so a reader never mixes two nets."""
    net: dict
    spec: Any
    choices: dict


def _net_facts(request: Request, net: dict) -> NetFacts:
    facts = getattr(request.app.state, "poll_net", None)
    if facts is None or facts.net is not net:
        spec = parse_spec(net["spec"], budget=None)
        facts = request.app.state.poll_net = NetFacts(net, spec, choices(spec, net["summary"]))
    return facts


async def _layer_question(request: Request, body: PollBody):
    net = runtime(request).published.net
    if net is None:
        raise ApiError(503, "not_ready", "the net is still loading", headers={"Retry-After": "1"})
    facts = await run_in_threadpool(_net_facts, request, net)
    try:
        return layer_question(body.kind, str(body.layer), facts.spec, net["summary"])
    except QuestionError as exc:
        raise ApiError(422, "invalid_layer", str(exc), field=exc.field) from None


async def _predict_question(request: Request, index: int | None):
    rt = runtime(request)
    inspector = getattr(rt.worker.handlers, "inspector", None) if rt.worker else None
    if inspector is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    test = inspector.dataset.test
    if not len(test):
        raise ApiError(409, "no_test_images", "the data set has no test images to ask about",
                       field="kind")
    if index is not None and not 0 <= index < len(test):
        raise ApiError(422, "invalid_example", f"index must be a test image in "
                       f"0..{len(test) - 1}, got {index}", field="index")
    position = secrets.randbelow(len(test)) if index is None else index
    answer = await command(request, "predict", [position])
    probs = answer["probs"][0]
    if not all(isinstance(p, float) and math.isfinite(p) for p in probs):
        raise ApiError(409, "diverged", "the net's outputs are not finite numbers (training "
                       "diverged): reset or load a net first")
    picture = image_b64(test.take(np.asarray([position]))[0])
    return predict_question(position, probs, answer["classes"], int(test.labels[position]),
                            picture)


@router.post("/poll", dependencies=[PRESENTER],
             summary="ask the room a question (replaces an open one)")
async def post_poll(request: Request, body: PollBody):
    polls = room(request)
    if body.kind == "custom":
        question = custom_question(body.question.strip(), [o.strip() for o in body.options],
                                   body.answer)
    elif body.kind == "predict":
        question = await _predict_question(request, body.index)
    else:
        question = await _layer_question(request, body)
    polls.open(question)
    return polls.view()


@router.post("/poll/answer", dependencies=[PUBLIC],
             summary="answer the open question (one answer per browser; changeable until "
                     "it closes)")
async def post_answer(request: Request, response: Response, body: AnswerBody):
    polls = room(request)
    request.app.state.poll_answers.check(request, "answers")
    viewer = ensure_viewer(request, response)
    try:
        poll = polls.answer(viewer, body.option, body.poll)
    except PollError as exc:
        raise _refused(exc) from None
    return {"id": poll.id, "option": body.option, "total": len(poll.answers)}


@router.delete("/poll", dependencies=[PRESENTER],
               summary="close the open question and reveal the answer and the counts")
async def delete_poll(request: Request):
    polls = room(request)
    try:
        poll = polls.close()
    except PollError as exc:
        raise _refused(exc) from None
    return {"id": poll.id, "total": len(poll.answers), **polls.reveal(poll)}


@router.get("/poll", dependencies=[PUBLIC],
            summary="the open or last question, its counts, and this browser's answer")
async def get_poll(request: Request):
    """`choices`: per layer kind, the layers of the running net it can ask about."""
    polls = room(request)
    net = runtime(request).worker.published.net if runtime(request).worker else None
    facts = await run_in_threadpool(_net_facts, request, net) if net is not None else None
    return {"poll": polls.view(viewer_id(request) or ""),
            "choices": facts.choices if facts is not None else None}
