"""Beat the network: GET /api/challenge (a random test image under an id, never its label),
POST /api/challenge (one answer per id: right or wrong, and the net's own answer and
probabilities for that image at that moment), GET /api/leaderboard (the `leaderboard` stream
event's JSON twin: the room against the net on the same images) and DELETE /api/leaderboard
(presenter: start over, e.g. after changing the net). The game's state and bounds are
server/challenge.py's.

Anyone may play; an id belongs to the browser it was handed to (the viewer cookie,
server/viewers.py). Both /api/challenge methods together are rate-limited per client address
(429 + Retry-After), except for the machine's own addresses (Settings.unlimited_clients: the
presenter's browser). The net's answers come from the worker's "predict" command (evaluation
mode in the Inspector's own buffers, never training's), coalesced by NetAnswers: one
command at a time however many answer at once. Leaderboard events are published from the
event loop, at most one per Settings.leaderboard_every_s.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time

import numpy as np
from fastapi import APIRouter, Request, Response

from server.auth import PRESENTER, PUBLIC, client_address
from server.challenge import (
    Busy,
    Leaderboard,
    NetAnswers,
    Refusal,
    Rounds,
    Throttle,
    clean_nickname,
)
from server.errors import ApiError
from server.json_route import JSONBodyRoute
from server.models import ChallengeBody
from server.runtime import Runtime, runtime
from server.viewers import RateLimit, ensure_viewer, viewer_id
from server.visuals import data_url

router = APIRouter(prefix="/api", tags=["challenge"], route_class=JSONBodyRoute)

MAX_BATCH = 64              # images in one predict command
MAX_WAITING = 1024          # answers waiting for the net at once (beyond: 503)
NO_STORE = {"Cache-Control": "no-store"}


class Room:
    """The game of one server: rounds, the leaderboard, its events, the rate limit."""

    def __init__(self, rt: Runtime) -> None:
        s = rt.settings
        self.rt = rt
        self.classes = list(rt.published.classes)
        self.rounds = Rounds(s.challenge_open, s.challenge_per_viewer, s.challenge_ttl_s)
        self.board = Leaderboard(self.classes, s.leaderboard_players, s.leaderboard_top,
                                 covers(rt))
        self.limit = RateLimit(s.challenge_rate, s.challenge_burst, s.max_tracked_addresses)
        self.net = NetAnswers(self.predict, MAX_BATCH, MAX_WAITING)
        self.events = Throttle(s.leaderboard_every_s, self.publish)
        self._payload: tuple[int, dict] | None = None

    async def predict(self, positions: list[int]) -> list[tuple[int, list[float]]]:
        result = await asyncio.wrap_future(self.rt.worker.submit("predict", positions))
        return [(result["step"], row) for row in result["probs"]]

    def payload(self) -> dict:
        if self._payload is None or self._payload[0] != self.board.version:
            self._payload = (self.board.version, self.board.payload())
        return self._payload[1]

    def publish(self) -> None:
        self.rt.hub.publish("leaderboard", self.payload())


def covers(rt: Runtime) -> dict:
    """Which net a new leaderboard starts from: its name, run and step, and when."""
    published = rt.published
    return {"net": (published.net or {}).get("name"), "run": published.active_run,
            "from_step": (published.metrics or {}).get("step"), "since": time.time()}


def net_identity(rt: Runtime) -> tuple:
    net = rt.published.net or {}
    return rt.published.active_run, net.get("name"), net.get("params")


def room(request: Request) -> Room:
    """The game, made on first use once the run is ready (503 before: no classes yet)."""
    rt = runtime(request)
    if rt.worker is None:
        raise ApiError(503, "not_ready", "the server is starting", headers={"Retry-After": "1"})
    rt.worker.check_ready()
    state = request.app.state
    if getattr(state, "challenge_room", None) is None:
        state.challenge_room = Room(rt)
        state.challenge_room.events.changed()       # a page subscribing now gets a board
    return state.challenge_room


def limited(request: Request, game: Room) -> None:
    if client_address(request) not in runtime(request).settings.unlimited_clients:
        game.limit.check(request, "challenge requests")


def refused(refusal: Refusal) -> ApiError:
    return ApiError(refusal.status, refusal.code, refusal.detail, field=refusal.field)


@router.get("/challenge", dependencies=[PUBLIC],
            summary="a random test image to classify: {id, image (PNG data URL), classes}")
async def get_challenge(request: Request, response: Response):
    game = room(request)
    limited(request, game)
    viewer = ensure_viewer(request, response)
    test = runtime(request).worker.handlers.inspector.dataset.test
    if not len(test):
        raise ApiError(409, "no_test_images", "this data set has no test images to play with")
    position = secrets.randbelow(len(test))
    image = data_url(test.take(np.array([position]))[0])
    round_id = game.rounds.issue(viewer, position)
    response.headers.update(NO_STORE)
    return {"id": round_id, "image": image, "classes": game.classes,
            "expires_s": game.rounds.ttl_s}


@router.post("/challenge", dependencies=[PUBLIC],
             summary="answer an image once: right or wrong, and the net's own answer")
async def post_challenge(request: Request, body: ChallengeBody):
    game = room(request)
    limited(request, game)
    if body.label not in game.classes:
        raise ApiError(422, "invalid_label", f"label: not a class; the classes are "
                       f"{', '.join(game.classes)}", field="label")
    guess = game.classes.index(body.label)
    try:
        nickname = clean_nickname(body.nickname)
        found = game.rounds.claim(body.id, viewer_id(request))
    except Refusal as refusal:
        raise refused(refusal) from None
    try:
        net_step, probs = await game.net.ask(found.position)
    except Busy as exc:
        game.rounds.reopen(body.id, found)
        raise ApiError(503, "busy", f"{exc}; try again in a second",
                       headers={"Retry-After": "1"}) from None
    except BaseException:               # not ready, stopping, or the request went away
        game.rounds.reopen(body.id, found)
        raise
    if not all(math.isfinite(p) for p in probs):
        game.rounds.reopen(body.id, found)
        raise ApiError(409, "not_finite", "the net gives no finite probabilities (training "
                       "diverged); answer again once the presenter has reset it")
    truth = int(runtime(request).worker.handlers.inspector.dataset.test.labels[found.position])
    net_guess = int(np.argmax(probs))
    player = game.board.record(viewer_id(request), nickname, truth, guess, net_guess,
                               net_step, net_identity(runtime(request)))
    game.events.changed()
    return {"correct": guess == truth, "label": game.classes[truth],
            "guess": game.classes[guess],
            "net": {"label": game.classes[net_guess], "p": probs[net_guess],
                    "correct": net_guess == truth, "step": net_step,
                    "probs": dict(zip(game.classes, probs, strict=True))},
            "you": {"nickname": player.nickname, "answers": player.answers,
                    "correct": player.correct, "net_correct": player.net_correct}}


@router.get("/leaderboard", dependencies=[PUBLIC],
            summary="the room against the net on the same images, overall and per class")
async def get_leaderboard(request: Request, response: Response):
    response.headers.update(NO_STORE)
    return room(request).payload()


@router.delete("/leaderboard", dependencies=[PRESENTER],
               summary="start the leaderboard over (it says which net and step it covers)")
async def delete_leaderboard(request: Request):
    game = room(request)
    game.board.reset(game.classes, covers(runtime(request)))
    game.events.cancel()
    game.events.last = -math.inf
    game.events.changed()               # at once: everyone sees the empty board
    return game.payload()
