"""Roles: every route declares a policy; presenter routes refuse without the token; the token is
traded for an HttpOnly cookie holding a session id (never the token) and leaves the address
bar; foreign origins are refused; wrong tokens are limited per client address."""

from __future__ import annotations

import pytest

from server.app import create_app
from server.auth import COOKIE_PREFIX, route_policies
from server.settings import Settings
from tests.server.conftest import TOKEN, TestClient, presenter, tiny_settings, wait_ready

COOKIE = f"{COOKIE_PREFIX}_80"  # TestClient talks to http://testserver, port 80

PRESENTER_ROUTES = [("PUT", "/api/net"), ("POST", "/api/net/check"), ("POST", "/api/control"),
                    ("PATCH", "/api/params"), ("POST", "/api/snapshot"),
                    ("GET", "/api/snapshot"), ("PUT", "/api/snapshot"),
                    ("POST", "/api/pretrained"), ("PUT", "/api/example"),
                    ("POST", "/api/poll"), ("DELETE", "/api/poll")]
PUBLIC_ROUTES = [("GET", "/"), ("GET", "/api/state"), ("GET", "/api/history"),
                 ("GET", "/api/frame"), ("GET", "/api/gallery"), ("GET", "/api/summary"),
                 ("GET", "/api/stream"), ("POST", "/api/classify"), ("POST", "/login"),
                 ("GET", "/api/poll"), ("POST", "/api/poll/answer")]
WRONG = "wrong-token-wrong-token"


@pytest.fixture(scope="module")
def client(module_dir):
    """This module offers many wrong tokens on purpose: a limit that never bites here."""
    app = create_app(tiny_settings(module_dir, login_failures=10_000))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def no_worker(**changes) -> TestClient:
    """An app whose training never starts: logins and the page need none."""
    values = dict(token=TOKEN, allowed_hosts=("testserver",))
    return TestClient(create_app(Settings(**{**values, **changes})))


def log_in(client) -> str:
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client.cookies[COOKIE]


def test_every_route_declares_a_policy(tmp_path):
    policies = route_policies(create_app(tiny_settings(tmp_path)))
    undeclared = [route for route, policy in policies.items() if policy is None]
    assert not undeclared, f"routes without a policy: {undeclared}"
    for path in ("/docs", "/openapi.json", "/static"):
        assert any(key.endswith(" " + path) and policy == "public"
                   for key, policy in policies.items()), path


def test_the_policy_of_each_route_is_the_intended_one(tmp_path):
    policies = route_policies(create_app(tiny_settings(tmp_path)))
    for method, path in PRESENTER_ROUTES:
        assert _policy(policies, method, path) == "presenter", (method, path)
    for method, path in PUBLIC_ROUTES:
        assert _policy(policies, method, path) == "public", (method, path)


def _policy(policies, method, path):
    matches = [p for key, p in policies.items()
               if key.split(" ")[1] == path and method in key.split(" ")[0].split(",")]
    assert len(matches) == 1, (method, path, policies)
    return matches[0]


@pytest.mark.parametrize("method,path", PRESENTER_ROUTES)
def test_presenter_routes_refuse_without_token(client, method, path):
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Cookie": f"{COOKIE}={WRONG}"},
                    {"Cookie": f"{COOKIE}={TOKEN}"}):     # the token is no session id
        response = client.request(method, path, headers=headers, json={"action": "pause"})
        assert response.status_code == 401, (method, path, headers, response.text)
        body = response.json()
        assert body["error"] == "unauthorized" and body["detail"]


@pytest.mark.parametrize("method,path", [r for r in PRESENTER_ROUTES if r[0] != "GET"])
def test_cookie_requests_from_a_foreign_origin_are_forbidden(client, method, path):
    log_in(client)
    try:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "http://testserver:81"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            response = client.request(method, path, headers=headers, json={"action": "pause"})
            assert response.status_code == 403, (method, path, headers, response.text)
            assert response.json()["error"] == "forbidden"
    finally:
        client.cookies.clear()


def test_cookie_from_the_same_origin_and_bearer_token_are_accepted(client):
    log_in(client)
    try:
        ok = client.post("/api/control", json={"action": "pause"},
                         headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
        assert ok.status_code == 200, ok.text
        assert client.get("/api/state").json()["role"] == "presenter"
    finally:
        client.cookies.clear()
    assert client.get("/api/state").json()["role"] == "viewer"
    assert client.get("/api/state", headers=presenter()).json()["role"] == "presenter"
    ok = client.post("/api/control", json={"action": "pause"},
                     headers=presenter(Origin="http://evil.example"))
    assert ok.status_code == 200   # a bearer token is no ambient credential


def test_token_exchange_sets_an_httponly_session_cookie_and_cleans_the_address(client):
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    client.cookies.clear()


def test_token_exchange_keeps_the_pages_own_options_in_the_address(client):
    # `serve` prints /?token=T; a presenter who adds &projector=1 gets the projector page.
    response = client.get(f"/?token={TOKEN}&projector=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?projector=1"
    client.cookies.clear()


def test_the_cookie_holds_a_session_id_not_the_token(client):
    session = log_in(client)
    client.cookies.clear()
    assert TOKEN not in session and len(session) >= 40
    assert session != log_in(client)                  # a fresh id per login
    client.cookies.clear()
    as_session = {"Cookie": f"{COOKIE}={session}"}
    assert client.get("/api/state", headers=as_session).json()["role"] == "presenter"
    as_token = {"Cookie": f"{COOKIE}={TOKEN}"}        # a leaked token is not a cookie...
    assert client.get("/api/state", headers=as_token).json()["role"] == "viewer"


def test_a_login_beyond_max_sessions_ends_the_oldest_session():
    with no_worker(max_sessions=2) as client:
        first = log_in(client)
        log_in(client), log_in(client)
        client.cookies.clear()
        page = client.get("/", headers={"Cookie": f"{COOKIE}={first}"}).text
        assert 'data-role="viewer"' in page


def test_a_wrong_token_gets_a_401_page_for_a_browser_and_json_for_others(client):
    page = client.get(f"/?token={WRONG}", headers={"Accept": "text/html"},
                      follow_redirects=False)
    assert page.status_code == 401 and "not valid" in page.text
    assert "set-cookie" not in page.headers
    plain = client.get(f"/?token={WRONG}", follow_redirects=False)
    assert plain.status_code == 401 and plain.json()["error"] == "unauthorized"
    assert client.get("/").status_code == 200


def test_the_login_form_posts_the_token_and_gets_the_cookie(client):
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert response.headers["set-cookie"].startswith(f"{COOKIE}=")
    client.cookies.clear()
    for data in ({"token": WRONG}, {}):
        refused = client.post("/login", data=data, follow_redirects=False)
        assert refused.status_code == 401 and "set-cookie" not in refused.headers


def test_each_port_has_its_own_presenter_cookie(client):
    # Two demos on one machine (ports 8000 and 8001): a browser keeps one cookie per port,
    # so logging in to one does not log the other out, and one's cookie is not the other's.
    response = client.get(f"http://testserver:8001/?token={TOKEN}", follow_redirects=False)
    assert response.headers["set-cookie"].startswith(f"{COOKIE_PREFIX}_8001=")
    session = client.cookies[f"{COOKIE_PREFIX}_8001"]
    client.cookies.clear()
    as_8001 = {"Cookie": f"{COOKIE_PREFIX}_8001={session}"}
    assert client.get("http://testserver:8001/api/state", headers=as_8001).json()["role"] == \
        "presenter"
    assert client.get("http://testserver:8000/api/state", headers=as_8001).json()["role"] == \
        "viewer"


def test_wrong_tokens_are_limited_per_address():
    with no_worker() as client:                        # the default: 10 a minute
        for attempt in range(10):
            refused = client.post("/login", data={"token": f"{WRONG}-{attempt}"})
            assert refused.status_code == 401, (attempt, refused.text)
        for request in (lambda: client.post("/login", data={"token": TOKEN}),   # even the
                        lambda: client.get(f"/?token={TOKEN}", follow_redirects=False),  # right
                        lambda: client.get("/", headers=presenter())):                   # one
            limited = request()
            assert limited.status_code == 429, limited.text
            assert limited.json()["error"] == "too_many_attempts"
            assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/").status_code == 200      # viewing goes on
        other = TestClient(client.app, client=("192.168.1.23", 50000))
        assert other.post("/login", data={"token": TOKEN},
                          follow_redirects=False).status_code == 303


def test_bearer_guesses_count_on_public_routes_too():
    with no_worker(login_failures=3) as client:
        for _ in range(3):
            assert client.get("/", headers={"Authorization": f"Bearer {WRONG}"}).status_code == 200
        assert client.get("/", headers={"Authorization": f"Bearer {WRONG}"}).status_code == 429


def test_an_ipv6_device_cannot_escape_the_limit_by_changing_address():
    with no_worker(login_failures=3) as client:
        for k in range(3):
            device = TestClient(client.app, client=(f"2001:db8:1:2::{k + 1:x}", 50000))
            assert device.post("/login", data={"token": WRONG}).status_code == 401
        fresh = TestClient(client.app, client=("2001:db8:1:2::ffff", 50000))
        assert fresh.post("/login", data={"token": TOKEN}).status_code == 429
        neighbour = TestClient(client.app, client=("2001:db8:1:3::1", 50000))
        assert neighbour.post("/login", data={"token": TOKEN},
                              follow_redirects=False).status_code == 303
