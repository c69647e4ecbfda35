"""The page (templates/index.html, static/): what each role is served, that every asset and
ES module the page loads exists and is served, the vendored libraries' licenses, and the
editor's JSON locator (run in Node when it is installed). No worker is started: the page is
served before data or kernels are ready, and these tests need neither."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from server.app import create_app
from server.routes import page as page_route
from server.settings import Settings
from tests.server.conftest import tiny_settings
from tests.server.live import live_server
from tests.server.probe import clients_in_a_process, state_latencies_while, wait_ready_live

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 for its TestClient; httpx (the test extra) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "static"
TOKEN = "page-test-presenter-token-0123"
ASSET = re.compile(r'(?:src|href)="(/static/[^"?]+)')
IMPORT = re.compile(r'(?:\bfrom\s+|\bimport\s*\(?\s*)"(\.{1,2}/[^"]+)"')


def page_app(**changes):
    return create_app(Settings(**{"token": TOKEN, "allowed_hosts": ("testserver",), **changes}))


@pytest.fixture(scope="module")
def client():
    # No `with`: the lifespan (and so the training worker) never starts.
    return TestClient(page_app())


def test_viewer_page_has_no_presenter_controls(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    assert 'data-role="viewer"' in page
    assert 'name="token"' in page                       # the presenter login form
    assert 'id="controls-panel"' not in page
    assert "Network editor" not in page
    for panel in ("stats-panel", "charts-panel", "net-panel", "upload-panel", "gallery-panel",
                  "arch-panel", "log-panel"):
        assert f'id="{panel}"' in page
    assert "http://127.0.0.1:8000/" in page             # join address (and its QR code)
    assert "None" not in page


def test_presenter_page_has_controls_and_editor(client):
    page = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'data-role="presenter"' in page
    assert 'id="controls-panel"' in page
    assert "Network editor" in page
    assert 'name="token"' not in page


def test_token_login_leads_to_the_presenter_page():
    fresh = TestClient(page_app())
    r = fresh.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = fresh.get("/").text                          # the cookie now says presenter
    assert 'data-role="presenter"' in page


def _module_graph(entry: Path) -> set[Path]:
    """Every file reachable from entry through relative ES module imports."""
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path.is_file(), f"imported but missing: {path.relative_to(REPO)}"
        seen.add(path)
        todo.extend((path.parent / spec).resolve() for spec in IMPORT.findall(path.read_text()))
    return seen


def test_every_asset_and_module_is_served(client):
    page = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assets = set(ASSET.findall(page))
    assert {"/static/js/app.js", "/static/css/app.css",
            "/static/vendor/uplot/uPlot.iife.min.js"} <= assets
    modules = _module_graph((STATIC / "js" / "app.js").resolve())
    urls = assets | {"/static/" + p.relative_to(STATIC.resolve()).as_posix() for p in modules}
    assert "/static/vendor/qrcode-generator/qrcode.mjs" in urls
    for url in sorted(urls):
        r = client.get(url)
        assert r.status_code == 200, url
        kind = r.headers["content-type"]
        if url.endswith((".js", ".mjs")):
            assert "javascript" in kind, (url, kind)    # module scripts need a JS MIME type
        elif url.endswith(".css"):
            assert kind.startswith("text/css"), (url, kind)


def test_page_modules_stay_small():
    for path in sorted((STATIC / "js").glob("*.js")) + [STATIC / "css" / "app.css"]:
        lines = path.read_text().count("\n")
        assert lines <= 400, f"{path.name} has {lines} lines"


def test_vendored_libraries_carry_licenses_and_versions():
    readme = (STATIC / "vendor" / "README.md").read_text()
    for folder in sorted(p for p in (STATIC / "vendor").iterdir() if p.is_dir()):
        assert (folder / "LICENSE").is_file(), f"{folder.name} has no LICENSE"
        assert "MIT" in (folder / "LICENSE").read_text()
        assert f"| {folder.name}/ |" in readme, f"{folder.name} missing from vendor/README.md"
    assert "1.6.32" in readme and "2.0.4" in readme


LOCATOR_CHECK = """
import { errorOffset, lineOf, parseWithPositions, prettySpec } from "./jsonpos.mjs";
import { fixed, pct, int, sig, labelName } from "./format.mjs";
const out = {};
const doc = {layers: [{type: "input", out_sx: 32, out_sy: 32, out_depth: 3},
  {type: "conv", sx: 3, filters: 4, stride: 3},
  {type: "residual", layers: [{type: "conv", sx: 3, filters: 8, pad: 1},
                              {type: "conv", sx: 3, filters: 8, pad: 1, stride: 3}]},
  {type: "softmax", num_classes: 10}]};
for (const [name, value] of [["object", doc], ["list", doc.layers]]) {
  const text = prettySpec(value, 80);
  const parsed = parseWithPositions(text);
  const line = (layer, field) => {
    const at = errorOffset(parsed, layer, field);
    return at === null ? null : text.split("\\n")[lineOf(text, at)];
  };
  out[name] = {same: JSON.stringify(parsed.value) === JSON.stringify(value),
               stride: line("1", "stride"), nested: line("2.layers.1", "stride"),
               missingField: line("3", "pad"), noLayer: line(null, null)};
}
try { parseWithPositions('[{"type": "input",}]'); out.syntax = null; }
catch (err) { out.syntax = [err.message, err.offset]; }
out.format = [fixed(null), pct(0.1234), int(1234567), sig(0.000012345), labelName(3, ["a", "b", "c", "d"]),
              fixed(NaN), pct(undefined)];
console.log(JSON.stringify(out));
"""


def node_or_skip() -> str:
    """Node's path. Without it a laptop skips (the page's JavaScript is then checked in a
    browser only), but CI fails: .ci/run installs Debian's nodejs and sets CONVNET_DEMO_CI
    (as does any CI that sets CI=true), so a check that silently stopped running shows."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CONVNET_DEMO_CI") or os.environ.get("CI", "").lower() == "true":
            pytest.fail("node is not installed, and CI must run the page's JavaScript check: "
                        "install Debian's nodejs (.ci/run does)")
        pytest.skip("node is not installed: the page's JavaScript is checked in a browser only")
    return node


def test_ci_installs_node_and_never_skips_the_javascript_check(monkeypatch):
    ci = (REPO / ".ci" / "run").read_text()
    assert "nodejs" in ci and "export CONVNET_DEMO_CI=1" in ci
    monkeypatch.setenv("PATH", "")                      # no node anywhere
    monkeypatch.setenv("CONVNET_DEMO_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="install Debian's nodejs"):
        node_or_skip()
    monkeypatch.delenv("CONVNET_DEMO_CI")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        node_or_skip()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        node_or_skip()


def test_editor_locates_server_errors_in_the_json(tmp_path):
    node = node_or_skip()
    for name in ("jsonpos", "format"):    # .mjs: ES modules whatever the Node version
        shutil.copy(STATIC / "js" / f"{name}.js", tmp_path / f"{name}.mjs")
    (tmp_path / "check.mjs").write_text(LOCATOR_CHECK)
    run = subprocess.run([node, "check.mjs"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for name in ("object", "list"):
        found = out[name]
        assert found["same"]
        assert '"stride": 3' in found["stride"] and '"sx": 3, "filters": 4' in found["stride"]
        assert '"filters": 8' in found["nested"] and '"stride": 3' in found["nested"]
        assert '"softmax"' in found["missingField"]       # no such key: the layer's line
        assert found["noLayer"] is None
    message, offset = out["syntax"]
    assert "trailing" in message and offset == len('[{"type": "input",')
    assert out["format"] == ["–", "12.3%", "1,234,567", "1.23e−5", "d", "–", "–"]


def test_each_roles_page_is_rendered_once(monkeypatch):
    rendered = []
    real = page_route.render_page
    monkeypatch.setattr(page_route, "render_page",
                        lambda request, role: rendered.append(role) or real(request, role))
    client = TestClient(page_app())
    pages = {client.get("/").text for _ in range(20)}
    pages |= {client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
              for _ in range(20)}
    assert len(pages) == 2 and sorted(rendered) == ["presenter", "viewer"]


def test_the_page_never_echoes_the_request_host():
    client = TestClient(page_app(allowed_hosts=("*",)))       # the Host check turned off
    for host in ("evil.example", "evil.example:8000", "127.0.0.1:9999"):
        page = client.get("/", headers={"Host": host})
        assert page.status_code == 200
        assert "evil" not in page.text and "9999" not in page.text
        assert 'data-join-url="http://127.0.0.1:8000/"' in page.text


def test_state_answers_while_a_room_loads_the_page(tmp_path):
    with live_server(tiny_settings(tmp_path)) as (base, _):
        wait_ready_live(base)
        seconds = state_latencies_while(base, clients_in_a_process(base, 150, ("/",) * 3))
        # 450 page loads at once queue ahead of a probe, each a copy of a page rendered once
        # (the JSON twins' part: tests/server/routes/test_state.py).
        assert max(seconds) < 5.0, sorted(seconds)[-5:]
