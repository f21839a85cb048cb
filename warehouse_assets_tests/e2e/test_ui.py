"""The Dagster UI in a real browser (`make e2e`): `dagster dev` on the embedded default, driven by
Debian's headless Chromium to find the assets, materialize one partition and backfill a range,
with the warehouse rows checked against the demo source afterwards; and a Google Sheets import
and export materialized from their asset pages against the fake Sheets API on loopback, with the
warehouse table and the tab checked cell by cell.

Skipped unless E2E=1: it needs Chromium and Playwright, which `.ci/e2e-setup` installs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from warehouse_assets import demo
from warehouse_assets.config import DEFAULT_REPLICATION_YAML
from warehouse_assets.settings import REPO_ROOT, Settings
from warehouse_assets_tests.conftest import Env, project_instance
from warehouse_assets_tests.sheets.conftest import SID
from warehouse_assets_tests.sheets.fake_sheets import FakeSheets

E2E = os.environ.get("E2E") == "1"
if E2E:  # Playwright is the e2e extra's; `make test` runs without it
    from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not E2E, reason="browser test: `make e2e` runs it")]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No sandbox (CI runs as root in a container); no GPU; and no calls home: without the
# background-networking flags Chromium tries to reach Google and logs refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "artifacts" / "e2e"
DOCS_GRAPH = REPO_ROOT / "docs" / "asset-graph.png"
ENV_SWITCH = ("SOURCE_DB_URL", "STAGING_URL", "WAREHOUSE_DB_URL", "REPLICATION_YAML",
              "GOOGLE_APPLICATION_CREDENTIALS")
ASSETS = ("mysql/prod/nps", "staging/prod/nps", "raw_data/nps", "analytics/channel_summary")
NPS_RUN = 'key:"staging/prod/nps" or key:"raw_data/nps"'
# Generous waits, not assertions: a run starts a process per step, the backfill daemon ticks
# every 30 s and CI machines are slow.
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 180_000
SERVER_START_SECONDS = 180
# The shipped replication entries plus one tab imported and one SELECT exported. The export has
# no deps: with them, sheets_automation (running under `dagster dev`) could launch the export on
# its own after the import, racing the one launched from the UI.
TARGETS_TAB, EXPORT_TAB = "Targets", "Doubled"
TARGETS_CELLS = [["month", "target_nps", "owner"], [45017, 42.5, "Ana"], [45047, 40, ""],
                 [45078, 37.5, "Bo"]]
EXPORT_SQL = ("SELECT month, target_nps * 2 AS doubled, owner FROM raw_data.nps_targets "
              "ORDER BY month")
SHEETS_ENTRIES = {
    "sheets": [{"source": f"https://docs.google.com/spreadsheets/d/{SID}/edit", "tab": TARGETS_TAB,
                "target": "raw_data.nps_targets",
                "columns": {"month": "DATE", "target_nps": "NUMERIC(5,1)", "owner": "VARCHAR(64)"}}],
    "exports": [{"sql": EXPORT_SQL, "spreadsheet": SID, "tab": EXPORT_TAB}],
}
SHEETS_GROUP = "sheets"
SHEETS_ASSETS = ("raw_data/nps_targets", f"sheets/{SID}/{EXPORT_TAB}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def sheets_server() -> Iterator[FakeSheets]:
    """The fake Sheets API for the module (the UI's runs call it), holding one spreadsheet."""
    server = FakeSheets().start()
    server.add_spreadsheet(SID)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, sheets_server: FakeSheets) -> Iterator[Env]:
    """A fresh embedded default and Dagster instance, seeded with the demo source as `make run`
    does, with the shipped replication entries plus a sheets: and an exports: entry pointed at
    the fake Sheets API; the environment variables stay set for the module so `dagster dev`
    inherits them."""
    tmp = tmp_path_factory.mktemp("e2e")
    replication = yaml.safe_load(DEFAULT_REPLICATION_YAML.read_text())
    (tmp / "replication.yaml").write_text(yaml.safe_dump({**replication, **SHEETS_ENTRIES},
                                                         sort_keys=False))
    # The project's instance settings (storage under home, in tmp), without the newsletter
    # dialog a fresh instance shows: it pops up late, over whatever is being clicked.
    home = project_instance(tmp / "dagster_home", nux={"enabled": False})
    with pytest.MonkeyPatch.context() as mp:
        for var in ENV_SWITCH:
            mp.delenv(var, raising=False)
        mp.setenv("WAREHOUSE_DATA_DIR", str(tmp / "data"))
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("REPLICATION_YAML", str(tmp / "replication.yaml"))
        mp.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", json.dumps(sheets_server.service_account_info()))
        mp.setenv("GOOGLE_SHEETS_API_URL", sheets_server.url)
        settings = Settings.from_env()
        demo.seed(settings.source_url)
        yield Env(settings, "prod", tmp)


@pytest.fixture(scope="module")
def ui(embedded: Env) -> Iterator[str]:
    """`dagster dev` (webserver and daemon) on a free loopback port; its base URL. The whole
    process group is stopped afterwards, pass or fail."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "dagster-dev.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster dev exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"dagster dev did not answer on {base}:\n{_tail(log_path)}")
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # dagster dev stops its webserver, daemon, code server
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser_page(ui: str, tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium page with a fresh profile, for the whole module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: `make e2e` installs Debian's chromium")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 720},
        )
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        yield page
        context.close()


@pytest.fixture
def page(browser_page, request: pytest.FixtureRequest):
    """The shared page; its last view is saved as an artifact, which shows where a failure was."""
    yield browser_page
    browser_page.screenshot(path=ARTIFACTS / f"last-{request.node.name}.png")


def _graph(page, base: str, selection: str = "") -> None:
    """Open the global asset lineage, filtered by an asset selection when one is given."""
    suffix = f"~{urllib.parse.quote(selection, safe='')}/" if selection else ""
    page.goto(f"{base}/asset-groups{suffix}")


def _show_whole_graph(page) -> None:
    """Expand the groups, hide the navigation and zoom out until the graph fits the canvas."""
    page.get_by_role("button", name="settings").last.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Hide navigation").click()
    # The graph's <svg> (nodes are foreignObjects) and the canvas showing it have no role or text.
    graph = page.locator("svg").filter(has=page.locator("foreignObject")).first
    zoom_out = page.get_by_role("button", name="zoom_out")
    canvas = page.locator("div").filter(has=graph).filter(has=zoom_out).last
    for _ in range(8):
        g, c = graph.bounding_box(), canvas.bounding_box()
        if g["y"] >= c["y"] and g["y"] + g["height"] <= c["y"] + c["height"]:
            break
        zoom_out.click()
    expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)


def _launch(page, base: str, partitions: str, launch_button: str) -> None:
    """From the asset graph: staging/prod/nps and raw_data/nps -> Materialize -> partitions ->
    launch, then follow the toast's View link to the run or backfill."""
    _graph(page, base, NPS_RUN)
    page.get_by_role("button", name="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("materialize 2 assets")
    picker = dialog.get_by_placeholder("No matching partitions")
    picker.fill(partitions)
    picker.press("Enter")
    dialog.get_by_role("button", name=launch_button).click()
    page.get_by_role("link", name="View", exact=True).click()


def _assert_rows_match_source(env: Env, first: dt.date, last: dt.date) -> None:
    """raw_data.nps holds exactly the source rows modified in those days and not deleted."""
    start = dt.datetime.combine(first, dt.time())
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    nps, _ = demo.tables(sa.MetaData())
    stmt = (
        sa.select(nps.c.id, nps.c.created_at, nps.c.modified_at, nps.c.score)
        .where(nps.c.modified_at >= start, nps.c.modified_at < end, sa.not_(nps.c.deleted))
        .order_by(nps.c.id)
    )
    with env.resource("source_db").engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(stmt)]
    loaded = env.resource("warehouse").query(
        "SELECT id, created_at, modified_at, score FROM raw_data.nps "
        "WHERE modified_at >= :start AND modified_at < :end ORDER BY id",
        {"start": start, "end": end},
    )
    assert expected, f"the demo source has no rows in {first}..{last}"
    assert loaded == expected


def test_asset_graph_shows_the_pipeline(ui: str, page) -> None:
    """The lineage graph loads the code location and holds every asset the issue names."""
    # The shipped pipeline: without the sheets group, whose assets only this module's YAML adds
    # (the README's picture shows what replication.yaml ships).
    _graph(page, ui, f'not group:"{SHEETS_GROUP}"')
    expect(page.get_by_text("replication_prod", exact=True).first).to_be_visible()  # the group loaded
    expect(page.get_by_text(SHEETS_GROUP, exact=True)).to_have_count(0)
    _show_whole_graph(page)
    page.screenshot(path=ARTIFACTS / "asset-graph.png", animations="disabled")
    if os.environ.get("UPDATE_DOCS") == "1":  # refresh the README's picture on purpose only
        shutil.copy(ARTIFACTS / "asset-graph.png", DOCS_GRAPH)
    missing = []
    for key in ASSETS:
        # Filtered by its exact key, the graph shows one node, named by the key's last part;
        # an unknown key leaves it empty.
        _graph(page, ui, f'key:"{key}"')
        nodes = page.get_by_text("Latest event", exact=True)
        try:
            expect(nodes).to_have_count(1)
            expect(page.get_by_text(key.rsplit("/", 1)[1], exact=True).first).to_be_visible()
        except AssertionError:
            missing.append(key)
    assert not missing, f"not in the asset graph: {missing}"


def test_materialize_one_partition_from_the_ui(ui: str, page, embedded: Env) -> None:
    """One day of nps, staged file and warehouse table, launched from the UI, succeeds there,
    and the warehouse then holds that day's source rows."""
    day = demo.demo_days()[1] - dt.timedelta(days=3)
    _launch(page, ui, day.isoformat(), "Launch 1 run")
    expect(page.get_by_text(f"partition: {day}").first).to_be_visible()
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=ARTIFACTS / "run.png")
    assert status.inner_text() == "Success"
    assert embedded.resource("staging").exists(f"staging/prod/nps/{day}.csv.gz")
    _assert_rows_match_source(embedded, day, day)


def test_backfill_a_range_from_the_ui(ui: str, page, embedded: Env) -> None:
    """A three-day backfill launched from the UI completes as one run (single-run policy, one
    staged file for the range) and the warehouse then holds those days' source rows."""
    last = demo.demo_days()[1]
    first = last - dt.timedelta(days=2)
    _launch(page, ui, f"[{first}...{last}]", "Launch backfill")
    expect(page.get_by_text(f"{first}...{last}")).to_be_visible()
    status = page.get_by_text("Status", exact=True).first.locator("xpath=following-sibling::*[1]")
    expect(status).to_have_text(
        re.compile(r"^(Succeeded|Failed|Canceled|Completed.*)$"), timeout=RUN_TIMEOUT_MS
    )
    page.screenshot(path=ARTIFACTS / "backfill.png")
    assert status.inner_text() == "Succeeded"
    page.get_by_role("tab", name="Runs").click()
    expect(page.get_by_role("link", name=re.compile(r"\b[0-9a-f]{8}$"))).to_have_count(1)  # run ids
    assert embedded.resource("staging").exists(f"staging/prod/nps/{first}_{last}.csv.gz")
    _assert_rows_match_source(embedded, first, last)


def _materialize_from_asset_page(page, base: str, key: str) -> None:
    """The asset's page -> Materialize -> the toast's View link -> the run succeeded."""
    page.goto(f"{base}/assets/{key}")
    expect(page.get_by_text(key.rsplit("/", 1)[1], exact=True).first).to_be_visible()
    page.get_by_role("button", name="Materialize").first.click()  # its icon is in the name
    page.get_by_role("link", name="View", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=ARTIFACTS / f"run-{key.replace('/', '_')}.png")
    assert status.inner_text() == "Success", f"the run of {key} did not succeed"


def _serial_date(serial: int) -> dt.date:
    """A Sheets date serial number (days since 1899-12-30) as a date."""
    return dt.date(1899, 12, 30) + dt.timedelta(days=serial)


def _tab_cells(row: tuple) -> list[Any]:
    """An exported row as the tab holds it: dates and DECIMALs as exact text, NULL empty, and
    (as values.get returns them) no trailing empty cells."""
    cells = ["" if v is None else v.isoformat() if isinstance(v, dt.date) else
             str(v) if isinstance(v, Decimal) else v for v in row]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def test_sheets_import_and_export_from_the_ui(ui: str, page, embedded: Env,
                                              sheets_server: FakeSheets) -> None:
    """A tab imported into the warehouse and a SELECT exported to a tab, each materialized from
    its asset page: the table then holds the tab's cells, and the tab the query's rows."""
    sheets_server.add_tab(SID, TARGETS_TAB, TARGETS_CELLS)
    _materialize_from_asset_page(page, ui, SHEETS_ASSETS[0])
    warehouse = embedded.resource("warehouse")
    expected = [(_serial_date(month), Decimal(str(nps)), owner or None)
                for month, nps, owner in TARGETS_CELLS[1:]]
    assert warehouse.query("SELECT month, target_nps, owner FROM raw_data.nps_targets "
                           "ORDER BY month") == expected

    _materialize_from_asset_page(page, ui, SHEETS_ASSETS[1])
    rows = warehouse.query(EXPORT_SQL)
    assert len(rows) == len(TARGETS_CELLS) - 1
    assert sheets_server.values(SID, EXPORT_TAB) == [["month", "doubled", "owner"],
                                                     *(_tab_cells(r) for r in rows)]
    assert sheets_server.calls(":batchUpdate", "POST"), "the export never wrote the tab"
