"""GET /: the page for everyone; unknown addresses and methods get the JSON error shape; the
API documentation stays on."""

from __future__ import annotations

from server.app import ASSET_ROOTS, asset_dir
from tests.server.conftest import assert_error


def test_the_page_is_served_without_caching(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_errors_have_one_shape(client):
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.delete("/api/state"), 405, "method_not_allowed")
    assert_error(client.get("/static/no-such-file.js"), 404)


def test_openapi_docs_stay_on(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/state", "/api/classify", "/api/net", "/api/stream"} <= set(paths)


def test_assets_come_from_the_package_first(tmp_path, monkeypatch):
    package, repo = tmp_path / "server", tmp_path
    (package / "static").mkdir(parents=True)
    (repo / "templates").mkdir()
    monkeypatch.setattr("server.app.ASSET_ROOTS", (package, repo))
    assert asset_dir("static") == package / "static"
    assert asset_dir("templates") == repo / "templates"
    assert asset_dir("nothing") is None
    assert len(ASSET_ROOTS) == 2
