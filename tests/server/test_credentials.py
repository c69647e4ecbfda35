"""The presenter's token and sessions outlive a restart (server/credentials.py): the token
file and the sessions file are private, a new token ends every session, and a real server
restarted on the same port still knows the presenter's cookie."""

from __future__ import annotations

import json
import stat

import httpx
import pytest

from server.credentials import TOKEN_FILE, SessionStore, digest, presenter_token
from server.sessions import Sessions
from tests.server.conftest import tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_is_made_once_kept_private_and_reused(tmp_path):
    token, how = presenter_token(tmp_path)
    assert how == "new" and len(token) >= 32
    path = tmp_path / TOKEN_FILE
    assert path.read_text() == token + "\n" and mode(path) == 0o600
    assert presenter_token(tmp_path) == (token, "kept")
    assert presenter_token(tmp_path, given="another-token-0123456789") == (
        "another-token-0123456789", "given")
    assert path.read_text() == token + "\n"            # --token is not stored
    renewed, how = presenter_token(tmp_path, renew=True)
    assert how == "new" and renewed != token and path.read_text() == renewed + "\n"


def test_a_token_file_others_could_read_is_made_private_and_a_bad_one_replaced(tmp_path):
    path = tmp_path / TOKEN_FILE
    path.write_text("kept-token-0123456789abcdef\n")
    path.chmod(0o644)
    assert presenter_token(tmp_path) == ("kept-token-0123456789abcdef", "kept")
    assert mode(path) == 0o600
    for bad in ("short\n", "has spaces in it and is long enough\n", ""):
        path.write_text(bad)
        token, how = presenter_token(tmp_path)
        assert how == "new" and path.read_text() == token + "\n"
    path.unlink()
    path.mkdir()                                         # not a file at all
    token, how = presenter_token(tmp_path)
    assert how == "unsaved" and len(token) >= 32


def test_sessions_come_back_under_the_same_token_only(tmp_path):
    store = SessionStore(tmp_path / "presenter-sessions-8000.json", "token-one-0123456789")
    sessions = Sessions(limit=3, store=store)
    ids = [sessions.new() for _ in range(4)]
    sessions.saver()()
    path = tmp_path / "presenter-sessions-8000.json"
    assert mode(path) == 0o600
    stored = json.loads(path.read_text())
    assert stored["token"] == digest("token-one-0123456789")
    assert not any(session_id in path.read_text() for session_id in ids)   # hashes only
    again = Sessions(limit=3, store=SessionStore(path, "token-one-0123456789"))
    assert [again.valid(i) for i in ids] == [False, True, True, True]
    other = Sessions(limit=3, store=SessionStore(path, "token-two-0123456789"))
    assert not any(other.valid(i) for i in ids) and len(other) == 0
    assert len(Sessions(limit=2, store=SessionStore(path, "token-one-0123456789"))) == 2


@pytest.mark.parametrize("content", ["not json", "[]", '{"token": 1}', '{"sessions": []}',
                                     '{"token": "x", "sessions": "nope"}'])
def test_a_damaged_sessions_file_starts_empty(tmp_path, content):
    path = tmp_path / "presenter-sessions-8000.json"
    path.write_text(content)
    assert Sessions(limit=3, store=SessionStore(path, "token-one-0123456789")).saver()
    assert len(Sessions(limit=3, store=SessionStore(path, "token-one-0123456789"))) == 0


def test_an_older_save_never_overwrites_a_newer_one(tmp_path):
    path = tmp_path / "presenter-sessions-8000.json"
    sessions = Sessions(limit=3, store=SessionStore(path, "token-one-0123456789"))
    sessions.new()
    first = sessions.saver()
    second_id = sessions.new()
    sessions.saver()()
    first()                                             # a slower thread, finishing late
    assert Sessions(limit=3, store=SessionStore(path, "token-one-0123456789")).valid(second_id)


def test_no_store_without_a_directory_or_a_fixed_port(tmp_path):
    assert SessionStore.for_server(None, 8000, "token-one-0123456789") is None
    assert SessionStore.for_server(tmp_path, 0, "token-one-0123456789") is None
    assert Sessions(limit=3).saver() is None


def test_a_restarted_server_keeps_the_presenters_page_logged_in(tmp_path):
    settings = tiny_settings(tmp_path, state_dir=tmp_path / "cache")
    with live_server(settings) as (base, app):
        wait_ready_live(base)
        port = app.state.runtime.settings.port
        with httpx.Client(base_url=base) as browser:
            login = browser.get(f"/?token={settings.token}", follow_redirects=False)
            assert login.status_code == 303
            cookies = dict(browser.cookies)
            assert browser.get("/api/state").json()["role"] == "presenter"
    assert (tmp_path / "cache" / f"presenter-sessions-{port}.json").is_file()
    # The same token (as `serve` keeps it): the open page's cookie still steers.
    with live_server(settings, port=port) as (base, _):
        wait_ready_live(base)
        with httpx.Client(base_url=base, cookies=cookies) as browser:
            assert browser.get("/api/state").json()["role"] == "presenter"
            pause = browser.post("/api/control", json={"action": "pause"},
                                 headers={"Origin": base})
            assert pause.status_code == 200, pause.text
    # A new token (`serve --new-token`) ends the session.
    renewed = settings.with_changes(token="a-new-token-0123456789abcdef")
    with live_server(renewed, port=port) as (base, _):
        wait_ready_live(base)
        with httpx.Client(base_url=base, cookies=cookies) as browser:
            assert browser.get("/api/state").json()["role"] == "viewer"
            assert browser.post("/api/control", json={"action": "pause"},
                                headers={"Origin": base}).status_code == 401
