"""Live questions: the room's answers to the one open question (the questions themselves are
made in server/questions.py).

PollRoom holds the one open (or last closed) question and its answers. It lives on the event
loop (routes are async and never await while changing it), so it needs no lock, and it
publishes the `poll` stream event from there: at most once per `publish_every_s` however
many answer (a burst of answers schedules one publish). An event carries the question, the
counts and the total, never who answered what; it leaves out a predict question's picture
(the page takes it once from GET /api/poll), as gallery events leave out theirs.
Bounded: one question at a time, at most `max_answers` browsers per question (each a 24-hex
viewer id and an option index).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from server.questions import Question


# --- the room ------------------------------------------------------------------------------
@dataclass
class Poll:
    id: str
    question: Question
    opened_at: float
    answers: dict[str, int] = field(default_factory=dict)    # viewer id -> option
    counts: list[int] = field(default_factory=list)
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None


class PollError(Exception):
    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field


class PollRoom:
    """The open (or last) question and its answers; event loop only (see the module doc)."""

    def __init__(self, hub, publish_every_s: float, max_answers: int,
                 clock=time.monotonic) -> None:
        self.hub, self.publish_every_s, self.max_answers = hub, publish_every_s, max_answers
        self.clock = clock
        self.poll: Poll | None = None
        self.published_at = -float("inf")
        self._pending: asyncio.TimerHandle | None = None
        self.publishes = 0

    def open(self, question: Question) -> Poll:
        """Ask a question (one open at a time: a new one replaces the open one)."""
        self.poll = Poll(secrets.token_urlsafe(9), question, time.time(),
                         counts=[0] * len(question.options))
        self._publish_now()
        return self.poll

    def answer(self, viewer: str, option: int, poll_id: str | None) -> Poll:
        poll = self._the_open(poll_id)
        if not 0 <= option < len(poll.counts):
            raise PollError(422, "invalid_option", f"option must be 0..{len(poll.counts) - 1} "
                            f"(this question has {len(poll.counts)} options), got {option}",
                            "option")
        before = poll.answers.get(viewer)
        if before is None and len(poll.answers) >= self.max_answers:
            raise PollError(409, "poll_full", f"this question has taken its "
                            f"{self.max_answers:,} answers")
        if before is not None:
            poll.counts[before] -= 1
        poll.answers[viewer] = option
        poll.counts[option] += 1
        self._publish_soon()
        return poll

    def close(self) -> Poll:
        poll = self._the_open(None)
        poll.closed_at = time.time()
        self._publish_now()
        return poll

    def _the_open(self, poll_id: str | None) -> Poll:
        poll = self.poll
        if poll is None or not poll.open:
            raise PollError(409, "no_open_question", "no question is open")
        if poll_id is not None and poll_id != poll.id:
            raise PollError(409, "question_changed", "that question is no longer open; "
                            "answer the one shown now", "poll")
        return poll

    # what anyone may see (never who answered what)
    def view(self, viewer: str | None = None, image: bool = True) -> dict[str, Any] | None:
        poll = self.poll
        if poll is None:
            return None
        q = poll.question
        out: dict[str, Any] = {
            "id": poll.id, "kind": q.kind, "question": q.text, "options": list(q.options),
            "layer": q.layer, "open": poll.open, "counts": list(poll.counts),
            "total": len(poll.answers), "opened_at": poll.opened_at,
            "has_image": q.image is not None}
        if image and q.image is not None:
            out["image"] = q.image
        if not poll.open:
            out.update(closed_at=poll.closed_at, **self.reveal(poll))
        if viewer is not None:
            out["yours"] = poll.answers.get(viewer)
        return out

    @staticmethod
    def reveal(poll: Poll) -> dict[str, Any]:
        q = poll.question
        return {"answer": q.answer, "counts": list(poll.counts), "explain": q.explain,
                "mistakes": list(q.mistakes), **q.reveal}

    def _publish_now(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self.published_at = self.clock()
        self.publishes += 1
        self.hub.publish("poll", self.view(image=False))

    def _publish_soon(self) -> None:
        if self._pending is not None:
            return
        wait = self.published_at + self.publish_every_s - self.clock()
        if wait <= 0:
            self._publish_now()
            return
        self._pending = asyncio.get_running_loop().call_later(wait, self._publish_due)

    def _publish_due(self) -> None:
        self._pending = None
        self._publish_now()
