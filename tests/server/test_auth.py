"""Roles: every route declares a policy; presenter routes refuse without the token; the token
is traded for an HttpOnly cookie and leaves the address bar; foreign origins are refused."""

from __future__ import annotations

import pytest

from server.app import create_app
from server.auth import COOKIE_PREFIX, route_policies
from tests.server.conftest import TOKEN, presenter, tiny_settings

COOKIE = f"{COOKIE_PREFIX}_80"  # TestClient talks to http://testserver, port 80

PRESENTER_ROUTES = [("PUT", "/api/net"), ("POST", "/api/net/check"), ("POST", "/api/control"),
                    ("PATCH", "/api/params"), ("POST", "/api/snapshot"),
                    ("GET", "/api/snapshot"), ("PUT", "/api/snapshot"),
                    ("POST", "/api/pretrained"), ("PUT", "/api/example")]
PUBLIC_ROUTES = [("GET", "/"), ("GET", "/api/state"), ("GET", "/api/history"),
                 ("GET", "/api/frame"), ("GET", "/api/gallery"), ("GET", "/api/summary"),
                 ("GET", "/api/stream"), ("POST", "/api/classify"), ("POST", "/login")]


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
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                    {"Cookie": f"{COOKIE}=wrong-token-wrong-token"}):
        response = client.request(method, path, headers=headers, json={"action": "pause"})
        assert response.status_code == 401, (method, path, headers, response.text)
        body = response.json()
        assert body["error"] == "unauthorized" and body["detail"]


@pytest.mark.parametrize("method,path", [r for r in PRESENTER_ROUTES if r[0] != "GET"])
def test_cookie_requests_from_a_foreign_origin_are_forbidden(client, method, path):
    client.cookies.set(COOKIE, TOKEN)
    try:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "http://testserver:81"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            response = client.request(method, path, headers=headers, json={"action": "pause"})
            assert response.status_code == 403, (method, path, headers, response.text)
            assert response.json()["error"] == "forbidden"
    finally:
        client.cookies.clear()


def test_cookie_from_the_same_origin_and_bearer_token_are_accepted(client):
    client.cookies.set(COOKIE, TOKEN)
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


def test_token_exchange_sets_an_httponly_cookie_and_cleans_the_address(client):
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    client.cookies.clear()


def test_a_wrong_token_gets_a_401_page(client):
    response = client.get("/?token=not-the-token-at-all", follow_redirects=False)
    assert response.status_code == 401
    assert "not valid" in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/").status_code == 200


def test_the_login_form_posts_the_token_and_gets_the_cookie(client):
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert response.headers["set-cookie"].startswith(f"{COOKIE}=")
    client.cookies.clear()
    for data in ({"token": "wrong-token-wrong-token"}, {}):
        refused = client.post("/login", data=data, follow_redirects=False)
        assert refused.status_code == 401 and "set-cookie" not in refused.headers


def test_each_port_has_its_own_presenter_cookie(client):
    # Two demos on one machine (ports 8000 and 8001): a browser keeps one cookie per port,
    # so logging in to one does not log the other out, and one's cookie is not the other's.
    response = client.get(f"http://testserver:8001/?token={TOKEN}", follow_redirects=False)
    assert response.headers["set-cookie"].startswith(f"{COOKIE_PREFIX}_8001=")
    client.cookies.clear()
    as_8001 = {"Cookie": f"{COOKIE_PREFIX}_8001={TOKEN}"}
    assert client.get("http://testserver:8001/api/state", headers=as_8001).json()["role"] == \
        "presenter"
    assert client.get("http://testserver:8000/api/state", headers=as_8001).json()["role"] == \
        "viewer"
