"""server/challenge.py without a server: nicknames, the rounds' bounds and expiry, the
leaderboard's scoring and bounds, the event throttle and the coalesced net answers."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.challenge import (
    NICKNAME_CHARS,
    Busy,
    Leaderboard,
    NetAnswers,
    Refusal,
    Rounds,
    Throttle,
    clean_nickname,
)

CLASSES = ["cat", "dog", "ship"]
COVERS = {"net": "convnetjs", "run": "r1", "from_step": 0, "since": 1.0}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refusal(call) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call()
    return caught.value


# --- nicknames -------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, shown", [
    (None, None), ("", None), ("   ", None), ("Ada", "Ada"), ("  Ada   L.  ", "Ada L."),
    ("<script>p=1</script>", "<script>p=1</script>"),     # plain text on the page
    ("Zoë", "Zoë"), ("Zoe\u0308", "Zoë"),                            # NFC: one code point
    ("李小龍", "李小龍"), ("x" * NICKNAME_CHARS, "x" * NICKNAME_CHARS),
])
def test_nicknames_that_are_shown(raw, shown):
    assert clean_nickname(raw) == shown


@pytest.mark.parametrize("raw", [
    "a\u202eb",         # right-to-left override: would reverse the text after it
    "a\u200bb",         # zero-width space
    "a\nb", "a\tb", "a\x00b", "a\x7fb",
    "a\u00a0b",         # a space that is not the plain one
    "a\ue000b",         # private use
    "x" * (NICKNAME_CHARS + 1),
])
def test_nicknames_that_are_refused_name_the_field(raw):
    found = refusal(lambda: clean_nickname(raw))
    assert (found.status, found.code, found.field) == (422, "invalid_nickname", "nickname")


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_text_is_either_a_bounded_printable_nickname_or_refused(raw):
    try:
        shown = clean_nickname(raw)
    except Refusal as found:
        assert found.field == "nickname"
        return
    if shown is not None:
        assert 1 <= len(shown) <= NICKNAME_CHARS
        assert shown == shown.strip() and "  " not in shown
        assert all(c.isprintable() for c in shown)


# --- rounds ----------------------------------------------------------------------------------
def test_an_id_is_answered_once_by_the_browser_it_was_handed_to():
    rounds = Rounds(max_open=10, per_viewer=3, ttl_s=60, clock=Clock())
    round_id = rounds.issue("alice", 7)
    assert len(round_id) == 22 and rounds.open_for("alice") == 1
    assert refusal(lambda: rounds.claim(round_id, "bob")).status == 404
    assert refusal(lambda: rounds.claim(round_id, None)).status == 404
    assert rounds.claim(round_id, "alice").position == 7
    assert rounds.open_for("alice") == 0
    again = refusal(lambda: rounds.claim(round_id, "alice"))
    assert (again.status, again.code, again.field) == (409, "already_answered", "id")
    unknown = refusal(lambda: rounds.claim("A" * 22, "alice"))
    assert (unknown.status, unknown.code) == (404, "no_challenge")


def test_ids_are_unguessable_and_distinct():
    rounds = Rounds(max_open=1000, per_viewer=1000, ttl_s=60, clock=Clock())
    ids = {rounds.issue("v", 0) for _ in range(500)}
    assert len(ids) == 500


def test_an_id_expires_after_its_time():
    clock = Clock()
    rounds = Rounds(max_open=10, per_viewer=3, ttl_s=60, clock=clock)
    old, fresh = rounds.issue("alice", 1), None
    clock.now += 30
    fresh = rounds.issue("alice", 2)
    clock.now += 31
    expired = refusal(lambda: rounds.claim(old, "alice"))
    assert (expired.status, expired.code, expired.field) == (410, "challenge_expired", "id")
    assert refusal(lambda: rounds.claim(old, "alice")).status == 404   # and forgotten
    assert rounds.claim(fresh, "alice").position == 2
    clock.now += 61
    rounds.issue("bob", 3)                      # expired rounds are dropped as time goes
    assert len(rounds) == 1


def test_a_browser_holds_at_most_per_viewer_open_images_its_oldest_forgotten():
    rounds = Rounds(max_open=100, per_viewer=3, ttl_s=60, clock=Clock())
    ids = [rounds.issue("alice", i) for i in range(5)]
    assert rounds.open_for("alice") == 3 and len(rounds) == 3
    assert refusal(lambda: rounds.claim(ids[0], "alice")).status == 404
    assert rounds.claim(ids[4], "alice").position == 4


def test_the_table_holds_at_most_max_open_ids_the_oldest_forgotten():
    rounds = Rounds(max_open=50, per_viewer=2, ttl_s=60, clock=Clock())
    ids = [rounds.issue(f"viewer{i}", i) for i in range(200)]
    assert len(rounds) == 50
    assert refusal(lambda: rounds.claim(ids[0], "viewer0")).status == 404
    assert rounds.claim(ids[-1], "viewer199").position == 199
    assert len(rounds._open) <= 50              # per-browser lists go with their rounds


def test_a_reopened_round_can_be_answered_again():
    rounds = Rounds(max_open=10, per_viewer=3, ttl_s=60, clock=Clock())
    round_id = rounds.issue("alice", 5)
    found = rounds.claim(round_id, "alice")
    rounds.reopen(round_id, found)
    assert rounds.claim(round_id, "alice") is found


# --- leaderboard -----------------------------------------------------------------------------
def test_the_room_and_the_net_are_scored_on_the_same_images_per_class():
    board = Leaderboard(CLASSES, max_players=10, top=5, covers=COVERS)
    net = ("r1", "convnetjs", 100)
    #            viewer nickname truth guess net_guess step
    board.record("a", "Ada", 0, 0, 1, 10, net)     # room right, net wrong
    board.record("a", None, 1, 1, 1, 11, net)      # both right; keeps "Ada"
    board.record("b", "Bo", 2, 0, 2, 12, net)      # room wrong, net right
    board.record("b", None, 2, 2, 2, 13, net)      # both right
    board.record("c", None, 0, 1, 0, 14, net)      # no nickname: counted, not ranked
    out = board.payload()
    assert out["answers"] == 5
    assert out["room"] == {"correct": 3, "accuracy": 3 / 5}
    assert out["net"] == {"correct": 4, "accuracy": 4 / 5}
    cat, dog, ship = out["per_class"]
    assert (cat["answers"], cat["room_correct"], cat["net_correct"]) == (2, 1, 1)
    assert (dog["answers"], dog["room_correct"], dog["net_correct"]) == (1, 1, 1)
    assert (ship["answers"], ship["room_correct"], ship["net_correct"]) == (2, 1, 2)
    assert ship["room_accuracy"] == 0.5 and ship["net_accuracy"] == 1.0
    assert out["top"] == [
        {"nickname": "Ada", "answers": 2, "correct": 2, "net_correct": 1, "beat_by": 1},
        {"nickname": "Bo", "answers": 2, "correct": 1, "net_correct": 2, "beat_by": -1}]
    assert out["players"] == 3
    assert out["covers"]["first_step"] == 10 and out["covers"]["last_step"] == 14
    assert out["covers"]["nets"] == 1


def test_an_empty_board_has_no_accuracy_rather_than_a_division_by_zero():
    out = Leaderboard(CLASSES, 10, 5, COVERS).payload()
    assert out["room"]["accuracy"] is None and out["net"]["accuracy"] is None
    assert all(row["room_accuracy"] is None for row in out["per_class"])
    assert out["top"] == [] and out["covers"]["nets"] == 0


def test_the_board_says_when_it_mixes_nets_and_starts_over_on_reset():
    board = Leaderboard(CLASSES, 10, 5, COVERS)
    board.record("a", None, 0, 0, 0, 50, ("r1", "convnetjs", 100))
    board.record("a", None, 0, 0, 0, 60, ("r1", "convnetjs", 100))
    assert board.payload()["covers"]["nets"] == 1
    board.record("a", None, 0, 0, 0, 3, ("r1", "convnetjs", 100))      # reset: step went back
    assert board.payload()["covers"]["nets"] == 2
    board.record("a", None, 0, 0, 0, 4, ("r1", "cifar_small", 999))     # another net
    assert board.payload()["covers"]["nets"] == 3
    version = board.version
    board.reset(CLASSES, {**COVERS, "from_step": 4})
    out = board.payload()
    assert out["answers"] == 0 and out["players"] == 0 and out["top"] == []
    assert out["covers"]["from_step"] == 4 and out["covers"]["nets"] == 0
    assert out["version"] > version


def test_the_players_table_and_the_ranking_are_bounded():
    board = Leaderboard(CLASSES, max_players=20, top=3, covers=COVERS)
    for i in range(100):
        board.record(f"v{i}", f"p{i}", 0, 0, 1, i, ("r1", "n", 1))
    out = board.payload()
    assert out["players"] == 20 and len(out["top"]) == 3
    assert out["answers"] == 100            # the counters keep every answer
    assert {p["nickname"] for p in out["top"]} <= {f"p{i}" for i in range(80, 100)}


# --- throttle and net answers ----------------------------------------------------------------
def test_the_throttle_publishes_at_most_once_per_interval_and_the_last_change_always():
    published = []

    async def scenario():
        throttle = Throttle(0.2, lambda: published.append(asyncio.get_running_loop().time()))
        start = asyncio.get_running_loop().time()
        for _ in range(50):                     # 50 changes over ~0.5 s
            throttle.changed()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        return start

    start = asyncio.run(scenario())
    assert 2 <= len(published) <= 5, published
    gaps = [b - a for a, b in itertools.pairwise(published)]
    assert all(gap >= 0.19 for gap in gaps), gaps
    assert published[-1] - start >= 0.45        # a change near the end was published too


def test_net_answers_coalesce_concurrent_asks_into_few_batches():
    calls = []

    async def ask_batch(positions):
        calls.append(list(positions))
        await asyncio.sleep(0.02)
        return [p * 10 for p in positions]

    async def scenario():
        answers = NetAnswers(ask_batch, max_batch=8, max_waiting=100)
        results = await asyncio.gather(*(answers.ask(p) for p in range(20)))
        return answers, results

    answers, results = asyncio.run(scenario())
    assert results == [p * 10 for p in range(20)]
    assert len(calls) == answers.batches <= 4 and all(len(c) <= 8 for c in calls)
    assert sorted(p for c in calls for p in c) == list(range(20))


def test_net_answers_refuse_beyond_max_waiting_and_pass_errors_to_every_asker():
    async def failing(positions):
        await asyncio.sleep(0.01)
        raise RuntimeError("the worker stopped")

    async def scenario():
        answers = NetAnswers(failing, max_batch=4, max_waiting=3)
        asks = [asyncio.ensure_future(answers.ask(p)) for p in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(Busy):
            await answers.ask(99)
        outcomes = await asyncio.gather(*asks, return_exceptions=True)
        return answers, outcomes

    answers, outcomes = asyncio.run(scenario())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert answers._task is None and answers._waiting == []
