"""The Host allowlist (DNS rebinding): only the machine's own names and addresses and the
operator's --allowed-host get answers; a refusal is the one JSON error shape; the join
address never comes from the request."""

from __future__ import annotations

import socket

import httpx
import pytest

from server.addresses import lan_address
from server.app import create_app
from server.hosts import allowed_hosts, host_pattern
from server.settings import Settings
from tests.server.conftest import TOKEN, TestClient, assert_error, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

EVIL = ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example",
        "10.9.8.7.nip.example", "[::2].evil.example", "")


def app_client(**changes) -> TestClient:
    return TestClient(create_app(Settings(**{"token": TOKEN, **changes})))


@pytest.mark.parametrize("host", EVIL)
def test_a_foreign_host_is_refused_in_the_one_error_shape(host):
    client = app_client()
    for method, path in (("GET", "/"), ("GET", "/api/state"), ("POST", "/api/control"),
                         ("GET", "/static/js/app.js"), ("GET", "/openapi.json")):
        response = client.request(method, path, headers={"Host": host})
        body = assert_error(response, 400, "unknown_host")
        assert "evil" not in body["detail"]


def test_the_machines_own_names_are_answered():
    client = app_client()
    names = ["localhost", "127.0.0.1", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST",
             lan_address(), socket.gethostname()]
    for host in names:
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)
        assert "evil" not in response.text


@pytest.mark.parametrize("host", ("10.9.8.7", "10.9.8.7:8000", "[fe80::2]", "[fe80::2]:8000",
                                  "[::1]"))
def test_any_address_is_answered_a_rebinding_page_needs_a_name(host):
    # A laptop on Wi-Fi and a cable has addresses on both; an attacker's page is reached by
    # a name it controls, which is what the allowlist refuses.
    response = app_client().get("/", headers={"Host": host})
    assert response.status_code == 200, response.text


def test_listening_address_and_allowed_host_are_added():
    settings = Settings(token=TOKEN, host="192.0.2.10",
                        allowed_hosts=("demo.school.example", "*.lab.example", "FE80::1"))
    hosts = allowed_hosts(settings)
    assert {"192.0.2.10", "demo.school.example", "*.lab.example", "[fe80::1]"} <= set(hosts)
    client = TestClient(create_app(settings))
    for host in ("192.0.2.10:8000", "demo.school.example", "room3.lab.example", "[fe80::1]"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    assert client.get("/", headers={"Host": "lab.example.evil"}).status_code == 400
    assert host_pattern(" Example.ORG ") == "example.org" and host_pattern("::1") == "[::1]"


def test_a_star_turns_the_check_off_but_nothing_echoes_the_host():
    client = app_client(allowed_hosts=("*",))
    page = client.get("/", headers={"Host": "evil.example"})
    assert page.status_code == 200 and "evil" not in page.text


def test_a_real_server_refuses_a_rebound_name_and_says_its_own_address(tmp_path):
    with live_server(tiny_settings(tmp_path, allowed_hosts=())) as (base, _):
        wait_ready_live(base)
        refused = httpx.get(f"{base}/api/state", headers={"Host": "evil.example"})
        assert refused.status_code == 400 and refused.json()["error"] == "unknown_host"
        state = httpx.get(f"{base}/api/state", headers={"Host": "localhost"}).json()
        assert state["join_url"] == f"{base}/"          # where it listens, not "localhost"
