"""Forks and races in Chromium against a real uvicorn: the presenter forks at the scrubber's
checkpoint with another learning rate, both runs are overlaid on the charts and listed, either
can be made active again; a race of the six optimizers runs to its end with a winner, and a
viewer's page shows the same table."""

from __future__ import annotations

import httpx
import pytest

from tests.server.browser import OUTPUT, watch_console
from tests.server.conftest import TOKEN, presenter, tiny_settings
from tests.server.live import live_server
from tests.server.probe import wait_ready_live

WAIT_MS = 60000     # generous: a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("runs")
    with live_server(tiny_settings(directory, start_paused=True)) as (base, _app):
        wait_ready_live(base)
        for _ in range(10):
            response = httpx.post(f"{base}/api/control", json={"action": "step"},
                                  headers=presenter(), timeout=30)
            assert response.status_code == 200, response.text
        yield base


def open_page(server, browser, width, height, token=True):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems = watch_console(page)
    page.goto(f"{server}/?token={TOKEN}" if token else server)
    page.wait_for_function("document.querySelectorAll('.runs-table tbody tr').length >= 1",
                           timeout=WAIT_MS)
    return context, page, problems


def legend_labels(page, chart: str) -> list[str]:
    return page.locator(f"#{chart} .u-legend .u-label").all_inner_texts()


def test_fork_at_the_scrubbers_checkpoint_then_race(server, browser):
    context, page, problems = open_page(server, browser, 1400, 900)
    page.locator("#scrub-range").focus()
    page.wait_for_timeout(300)                    # the checkpoint list arrives
    page.locator("#scrub-range").fill("4")
    page.wait_for_function("document.querySelector('.fork-where').textContent.includes('step 4')",
                           timeout=WAIT_MS)
    page.locator("#fork-learning_rate").fill("0.2")
    page.get_by_role("button", name="Fork here").click()
    page.wait_for_function("document.querySelector('.fork-note').textContent"
                           ".includes('r2 forks from step 4')", timeout=WAIT_MS)
    page.wait_for_function("document.querySelectorAll('.runs-table tbody tr').length === 2",
                           timeout=WAIT_MS)
    assert page.locator(".runs-table tr.run-active").get_attribute("data-run") == "r2"
    # the parent is overlaid on both charts, in its own colour, with a legend entry
    page.wait_for_function("[...document.querySelectorAll('#loss-chart .u-legend .u-label')]"
                           ".some((l) => l.textContent.startsWith('r1 '))", timeout=WAIT_MS)
    assert any(label.startswith("r1 ") for label in legend_labels(page, "acc-chart"))
    state = httpx.get(f"{server}/api/state").json()
    assert state["settings"]["learning_rate"] == 0.2
    page.locator("#charts-panel").screenshot(path=str(OUTPUT / "runs-fork-charts-1400x900.png"))

    page.locator(".runs-table tr[data-run='r1'] button", has_text="show").click()
    page.wait_for_function("document.querySelector('.runs-table tr.run-active')"
                           ".dataset.run === 'r1'", timeout=WAIT_MS)

    viewer, viewer_page, viewer_problems = open_page(server, browser, 390, 844, token=False)
    page.locator("#race-amount").fill("40")
    page.get_by_role("button", name="Start the race").click()
    page.wait_for_function("document.querySelector('.race-table caption').textContent"
                           ".includes('finished')", timeout=WAIT_MS)
    winner = page.locator(".race-table tr.race-winner")
    assert winner.count() == 1, httpx.get(f"{server}/api/race").json()
    assert "winner" in winner.inner_text()
    assert page.locator(".race-table tbody tr").count() == 6
    page.locator("#runs-panel").screenshot(path=str(OUTPUT / "runs-race-1400x900.png"))
    viewer_page.wait_for_function("document.querySelector('.race-table caption')"
                                  ".textContent.includes('finished')", timeout=WAIT_MS)
    assert viewer_page.locator(".race-form").count() == 0      # viewers only watch
    viewer_page.locator("#runs-panel").scroll_into_view_if_needed()
    viewer_page.screenshot(path=str(OUTPUT / "runs-race-viewer-390x844.png"))
    race = httpx.get(f"{server}/api/race").json()["race"]
    assert race["status"] == "finished" and all(r["steps"] == 40 for r in race["runs"])
    viewer.close()
    context.close()
    assert not problems and not viewer_problems, (problems, viewer_problems)


def test_the_runs_panel_on_a_projector_sized_screen(server, browser):
    context, page, problems = open_page(server, browser, 1920, 1080)
    page.locator("#runs-panel").scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / "runs-panel-1920x1080.png"))
    context.close()
    assert not problems, problems


def test_an_older_listing_never_undoes_a_newer_one(server, browser):
    """A GET /api/runs answered before the stream's last runs event arrived (a refetch when
    the active run changes, while the race ends) brings an older listing: the panel keeps the
    newer one, and takes only the older one's points."""
    context, page, problems = open_page(server, browser, 1400, 900)
    seen = page.evaluate("""async () => {
        const { Runs } = await import("/static/js/runs.js");
        const charts = { setOthers() {}, setBranches() {} };
        let changes = 0;
        const runs = new Runs(document.createElement("div"), {},
                              { charts, presenter: false, onActiveChange: () => changes++ });
        const row = (id) => ({ id, name: "sgd", parent: null, from_step: null, from_examples: null,
                               params: {}, net: "tiny", status: "parked", last: {} });
        const race = { equal: "steps", target: 40, status: "finished", winner: "r2", runs: [] };
        runs.apply({ version: 20, active: "r1", runs: [row("r1"), row("r2")], race });
        runs.points.set("r2", [{ step: 1 }]);
        runs.apply({ version: 10, active: "r2", runs: [row("r1")], race: null },
                   { r2: [{ step: 2 }] });
        return { version: runs.listing.version, active: runs.listing.active, changes,
                 winner: runs.listing.race && runs.listing.race.winner,
                 rows: runs.tbody.querySelectorAll("tr").length,
                 points: runs.points.get("r2").map((p) => p.step) };
    }""")
    context.close()
    assert seen == {"version": 20, "active": "r1", "changes": 0, "winner": "r2", "rows": 2,
                    "points": [1, 2]}, seen
    assert not problems, problems
