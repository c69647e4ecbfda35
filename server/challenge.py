"""Beat the network: viewers classify test images and the room is scored against the net.

GET /api/challenge hands a viewer a random test image under an unguessable id (never its
label); POST /api/challenge answers it once, with a class name. The answer is scored against
the truth, and the net's own answer for the same image is taken at that moment (the worker's
"predict" command), so the room and the net are compared on the same images. The leaderboard
counts answers, the room's and the net's right ones, overall and per true class, and the
nicknamed browsers with the most right answers beyond the net's on their images.

Everything kept is bounded, and nothing here touches training:
- Rounds: at most `max_open` ids (issued or answered, the oldest forgotten first), at most
  `per_viewer` unanswered per browser (its oldest forgotten first), each expiring `ttl_s`
  after it was issued. An answered id stays (as answered) until it expires or is pushed out,
  so a reused id is told apart from an unknown one.
- Leaderboard: fixed counters per class, and at most `max_players` browsers' scores (the
  least recently active forgotten first); the event shows the `top` of them.
- NetAnswers: at most one predict command in the worker's queue at a time, carrying up to
  `max_batch` images; at most `max_waiting` answers wait for it (beyond: 503).
Nicknames: 1..NICKNAME_CHARS characters after NFC normalisation and whitespace folding,
printable only (letters, marks, digits, punctuation, symbols and plain spaces: no control,
format, bidi-override, zero-width, private-use or unassigned code points). HTML characters
are allowed and are plain text everywhere: the page builds its DOM with textContent.

All of it runs on the event loop (route handlers), so no locks: one thread at a time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

ID_BYTES = 16
ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"          # secrets.token_urlsafe(16)
NICKNAME_CHARS = 24
ALLOWED_CATEGORIES = ("L", "M", "N", "P", "S")  # and the plain space, U+0020


class Refusal(Exception):
    """A refused answer: the HTTP status, the error code, the sentence (field: id)."""

    def __init__(self, status: int, code: str, detail: str, field: str = "id") -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field


def clean_nickname(raw: str | None) -> str | None:
    """The nickname to show (None: none given), or Refusal(422, field nickname)."""
    if raw is None:
        return None
    text = " ".join(part for part in unicodedata.normalize("NFC", raw).split(" ") if part)
    if not text:
        return None
    bad = next((c for c in text if c != " " and unicodedata.category(c)[0]
                not in ALLOWED_CATEGORIES), None)
    if bad is not None:
        raise Refusal(422, "invalid_nickname", f"nickname: U+{ord(bad):04X} is not allowed; "
                      "use letters, digits, punctuation, symbols and spaces", "nickname")
    if len(text) > NICKNAME_CHARS:
        raise Refusal(422, "invalid_nickname", f"nickname: at most {NICKNAME_CHARS} "
                      f"characters, got {len(text)}", "nickname")
    return text


@dataclass
class Round:
    position: int           # the test image
    viewer: str             # the browser it was handed to
    issued: float           # clock() when handed out
    answered: bool = False


class Rounds:
    """Images handed out, by id (see the module's doc for the bounds)."""

    def __init__(self, max_open: int, per_viewer: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_open < 1 or per_viewer < 1 or not ttl_s > 0:
            raise ValueError("max_open and per_viewer must be at least 1, ttl_s positive")
        self.max_open, self.per_viewer, self.ttl_s, self.clock = max_open, per_viewer, ttl_s, clock
        self._rounds: OrderedDict[str, Round] = OrderedDict()     # oldest first
        self._open: dict[str, list[str]] = {}                     # viewer -> unanswered ids

    def __len__(self) -> int:
        return len(self._rounds)

    def open_for(self, viewer: str) -> int:
        return len(self._open.get(viewer, ()))

    def issue(self, viewer: str, position: int) -> str:
        self._expire()
        mine = self._open.setdefault(viewer, [])
        while len(mine) >= self.per_viewer:
            self._forget(mine[0])
        while len(self._rounds) >= self.max_open:
            self._forget(next(iter(self._rounds)))
        round_id = secrets.token_urlsafe(ID_BYTES)
        self._rounds[round_id] = Round(position, viewer, self.clock())
        self._open.setdefault(viewer, []).append(round_id)
        return round_id

    def claim(self, round_id: str, viewer: str | None) -> Round:
        """The round `round_id` of this browser, now answered; Refusal when it is unknown,
        another browser's, answered already or expired (the round is then forgotten)."""
        found = self._rounds.get(round_id)
        if found is not None and self.clock() - found.issued > self.ttl_s:
            self._forget(round_id)
            raise Refusal(410, "challenge_expired", f"id: this image was handed out more "
                          f"than {self.ttl_s:g} s ago and has expired; ask for a new one")
        self._expire()
        if found is None or viewer is None or found.viewer != viewer:
            raise Refusal(404, "no_challenge", "id: no image with this id is waiting for "
                          "this browser's answer (it was never handed out here, or newer "
                          "ones replaced it); ask for a new one (GET /api/challenge)")
        if found.answered:
            raise Refusal(409, "already_answered", "id: this image has been answered "
                          "already (one answer per image); ask for a new one")
        found.answered = True
        self._close(round_id, viewer)
        return found

    def reopen(self, round_id: str, found: Round) -> None:
        """Undo a claim whose answer could not be scored (the net gave none)."""
        if self._rounds.get(round_id) is found and found.answered:
            found.answered = False
            self._open.setdefault(found.viewer, []).append(round_id)

    def _close(self, round_id: str, viewer: str) -> None:
        mine = self._open.get(viewer)
        if mine is not None and round_id in mine:
            mine.remove(round_id)
            if not mine:
                del self._open[viewer]

    def _forget(self, round_id: str) -> None:
        found = self._rounds.pop(round_id, None)
        if found is not None:
            self._close(round_id, found.viewer)

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl_s
        while self._rounds:
            oldest_id, oldest = next(iter(self._rounds.items()))
            if oldest.issued >= deadline:
                break
            self._forget(oldest_id)


@dataclass
class Player:
    nickname: str | None = None
    answers: int = 0
    correct: int = 0
    net_correct: int = 0


def accuracy(right: int, of: int) -> float | None:
    return right / of if of else None


class Leaderboard:
    """The room against the net on the same images (see the module's doc)."""

    def __init__(self, classes: list[str], max_players: int, top: int,
                 covers: dict[str, Any]) -> None:
        if max_players < 1 or top < 0:
            raise ValueError("max_players must be at least 1 and top at least 0")
        self.max_players, self.top = max_players, top
        self.version = 0
        self.reset(classes, covers)

    def reset(self, classes: list[str], covers: dict[str, Any]) -> None:
        """Start over; `covers` says which net and step the new board starts from."""
        self.classes = list(classes)
        k = len(self.classes)
        self.answers, self.room, self.net = [0] * k, [0] * k, [0] * k
        self.players: OrderedDict[str, Player] = OrderedDict()
        self.covers = {**covers, "first_step": None, "last_step": None, "nets": 0}
        self._last_net: tuple | None = None
        self.version += 1

    def record(self, viewer: str, nickname: str | None, truth: int, guess: int,
               net_guess: int, net_step: int, net_identity: tuple) -> Player:
        """Count one answer; the player's score after it. A nickname given replaces the
        browser's earlier one (None keeps it)."""
        self.answers[truth] += 1
        self.room[truth] += guess == truth
        self.net[truth] += net_guess == truth
        player = self.players.pop(viewer, None) or Player()
        self.players[viewer] = player                  # the most recent at the end
        while len(self.players) > self.max_players:
            self.players.popitem(last=False)
        if nickname is not None:
            player.nickname = nickname
        player.answers += 1
        player.correct += guess == truth
        player.net_correct += net_guess == truth
        covers = self.covers
        # Another net (a new spec, another run) or the same one started over (a reset or a
        # loaded snapshot puts the step back): the board now mixes nets, and says so.
        if (self._last_net != net_identity
                or (covers["last_step"] is not None and net_step < covers["last_step"])):
            covers["nets"] += 1
            self._last_net = net_identity
        if covers["first_step"] is None:
            covers["first_step"] = net_step
        covers["last_step"] = net_step
        self.version += 1
        return player

    def ranking(self) -> list[dict[str, Any]]:
        """The nicknamed players, most right answers beyond the net's first."""
        named = [p for p in self.players.values() if p.nickname is not None]
        named.sort(key=lambda p: (p.correct - p.net_correct, p.correct, -p.answers),
                   reverse=True)
        return [{"nickname": p.nickname, "answers": p.answers, "correct": p.correct,
                 "net_correct": p.net_correct, "beat_by": p.correct - p.net_correct}
                for p in named[:self.top]]

    def payload(self) -> dict[str, Any]:
        answers, room, net = sum(self.answers), sum(self.room), sum(self.net)
        return {
            "version": self.version, "covers": dict(self.covers), "classes": self.classes,
            "answers": answers,
            "room": {"correct": room, "accuracy": accuracy(room, answers)},
            "net": {"correct": net, "accuracy": accuracy(net, answers)},
            "per_class": [{"label": name, "answers": self.answers[k],
                           "room_correct": self.room[k], "net_correct": self.net[k],
                           "room_accuracy": accuracy(self.room[k], self.answers[k]),
                           "net_accuracy": accuracy(self.net[k], self.answers[k])}
                          for k, name in enumerate(self.classes)],
            "players": len(self.players), "top": self.ranking()}


class Throttle:
    """Calls `publish` at most once per `every_s` (event loop only): a change inside the
    interval is published at its end, once, however many changes came meanwhile."""

    def __init__(self, every_s: float, publish: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.publish, self.clock = every_s, publish, clock
        self.last = -float("inf")
        self._timer: asyncio.TimerHandle | None = None
        self.published = 0

    def changed(self) -> None:
        if self._timer is not None:
            return                          # already due at the interval's end
        wait = self.last + self.every_s - self.clock()
        if wait <= 0:
            self._fire()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.last = self.clock()
        self.published += 1
        self.publish()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Busy(Exception):
    """Too many answers are waiting for the net."""


class NetAnswers:
    """The net's answers for test images, asked for together: one `ask_batch` call at a time
    (a worker command), carrying every position that arrived while the previous one ran."""

    def __init__(self, ask_batch: Callable[[list[int]], Awaitable[list[Any]]],
                 max_batch: int, max_waiting: int) -> None:
        self.ask_batch, self.max_batch, self.max_waiting = ask_batch, max_batch, max_waiting
        self._waiting: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.batches = 0                    # calls made (tests and figures)

    async def ask(self, position: int) -> Any:
        if len(self._waiting) >= self.max_waiting:
            raise Busy(f"{len(self._waiting)} answers are waiting for the net")
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((position, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:self.max_batch]
                del self._waiting[:self.max_batch]
                self.batches += 1
                try:
                    results = await self.ask_batch([position for position, _ in batch])
                except BaseException as exc:             # every asker hears of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():                # an asker that went away: skip
                        future.set_result(result)
        finally:
            self._task = None
