"""Dagster's own commands in a fresh clone, from its root, with no environment set: `dg check
defs`, `dg list defs`, `dg launch --partition-range`, `dagster asset materialize`, `dagster dev`,
`dg dev` and `dagster-daemon run`, on the embedded default with all state under the clone's
.data/ (the demo source seeds itself on first use)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from warehouse_assets import demo
from warehouse_assets.settings import REPO_ROOT

pytestmark = pytest.mark.cli

BIN = Path(sys.executable).parent  # the project's .venv: the clone has none of its own
CEILING_S = 90  # how long to wait for a server or daemon before giving up; nothing asserts speed
RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key } } } } }"
NPS = "SELECT id, created_at, modified_at, deleted, score FROM {} ORDER BY id"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this repository's HEAD: no .data/, no .venv, nothing generated."""
    dest = tmp_path_factory.mktemp("cli") / "warehouse_assets"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(dest)],
                   check=True, timeout=60)
    assert not (dest / ".data").exists()
    return dest


def _env(clone: Path, **extra: str) -> dict[str, str]:
    """No DAGSTER_HOME, SOURCE_DB_URL, STAGING_URL, WAREHOUSE_DB_URL, ...: only a PATH that finds
    the project's commands, and a HOME of the clone's own (no user dg config)."""
    return {"PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(clone.parent),
            "LANG": "C.UTF-8", **extra}


def _default_signals() -> None:
    # The runner may start us with SIGINT/SIGTERM ignored, which children inherit.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run(clone: Path, *cmd: str, timeout: int = 120) -> tuple[subprocess.CompletedProcess, float]:
    """The command from the clone's root; it must succeed. Returns it and its wall time."""
    started = time.monotonic()
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=clone, env=_env(clone),
                          capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"{' '.join(cmd)}: {seconds:.1f} s")
    return proc, seconds


def _source(clone: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(clone / ".data" / "prod.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _warehouse(clone: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(clone / ".data" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _runs_db(clone: Path, sql: str) -> list[tuple]:
    path = clone / ".data" / "dagster" / "history" / "runs.db"
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        return []
    finally:
        con.close()


def test_dg_check_and_list_defs(clone: Path) -> None:
    out, _ = _run(clone, "dg", "check", "defs")
    assert "All definitions loaded successfully" in out.stdout + out.stderr
    listing, _ = _run(clone, "dg", "list", "defs", "--json")
    defs = json.loads(listing.stdout)
    keys = {a["asset_key"] for a in defs["assets"]}
    assert {"staging/prod/nps", "raw_data/nps", "raw_data/channel",
            "analytics/nps_summary", "analytics/channel_summary"} <= keys
    assert {"landing_user_session_channel", "landing_session_timestamp", "writer_pools",
            "summaries_automation", "slack_on_failed_check", "freshness_checks_sensor"} <= {
        s["name"] for s in defs["sensors"]}
    assert {s["name"] for s in defs["schedules"]} == {"replicate_raw_data__nps_daily",
                                                      "reconcile_daily"}


def test_dg_launch_partition_range_loads_the_window(clone: Path) -> None:
    """The Airflow `dags backfill -s A -e B` of the seed: one run, one window, in a fresh clone
    whose demo source does not exist yet."""
    first, _ = demo.demo_days()
    start, end = first + dt.timedelta(days=5), first + dt.timedelta(days=9)
    _, seconds = _run(clone, "dg", "launch", "--assets", "staging/prod/nps,raw_data/nps",
                      "--partition-range", f"{start}...{end}")
    parse = dt.datetime.fromisoformat
    # The rows whose cursor falls in the five days, less the soft-deleted ones.
    want = [(i, parse(c), parse(m), bool(d), s) for i, c, m, d, s in _source(clone, NPS.format(
        f"nps WHERE NOT deleted AND modified_at >= '{start}' "
        f"AND modified_at < '{end + dt.timedelta(days=1)}'"))]
    assert len(want) > 50
    assert _warehouse(clone, NPS.format("raw_data.nps")) == want
    # State went to the clone's .data/dagster: the run and its materializations are recorded.
    assert _runs_db(clone, "SELECT status FROM runs") == [("SUCCESS",)]
    print(f"dg launch (5 days, fresh clone, seeds the source): {seconds:.1f} s")


def test_dagster_asset_materialize_full_refresh(clone: Path) -> None:
    _run(clone, "dagster", "asset", "materialize", "-m", "warehouse_assets.definitions",
         "--select", "staging/prod/channel,raw_data/channel")
    want = _source(clone, "SELECT channel FROM channel ORDER BY channel")
    assert [c for (c,) in want] == sorted(demo.CHANNELS)
    assert _warehouse(clone, "SELECT channel FROM raw_data.channel ORDER BY channel") == want


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(what: str, proc: subprocess.Popen, log: Path, check) -> float:
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{what}: exited {proc.returncode}\n{log.read_text()[-3000:]}")
        if time.monotonic() - started > CEILING_S:
            raise TimeoutError(f"gave up waiting for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@contextmanager
def _started(clone: Path, name: str, *cmd: str, **env: str) -> Iterator[tuple]:
    """The command started from the clone's root in its own process group, then stopped."""
    log = clone.parent / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / cmd[0]), *cmd[1:]], cwd=clone, env=_env(clone, **env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_default_signals)  # noqa: PLW1509 (single thread)
        try:
            yield proc, log
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                 data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)["data"]


def _server_info(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as resp:
        return "dagster_version" in json.load(resp)


@pytest.mark.parametrize("command", [("dagster", "dev"), ("dg", "dev")], ids=" ".join)
def test_dev_serves_the_ui_on_the_persisted_instance(clone: Path, command: tuple) -> None:
    """With no DAGSTER_HOME Dagster makes a temporary home, but the repo's dagster.yaml keeps the
    instance under .data/dagster: the UI shows the runs `dg launch` made earlier."""
    port = _free_port()
    name = "-".join(command)
    with _started(clone, name, *command, "-h", "127.0.0.1", "-p", str(port)) as (proc, log):
        seconds = _until(f"{name} to answer", proc, log, lambda: _server_info(port))
        runs = [r for r in _graphql(port, RUNS)["runsOrError"]["results"]  # the CLI's own runs,
                if "dagster/sensor_name" not in {t["key"] for t in r["tags"]}]  # not the daemon's
        assert len(runs) >= 1 and {r["status"] for r in runs} == {"SUCCESS"}
        print(f"{name}: UI answered after {seconds:.1f} s")


def test_dagster_daemon_run_heartbeats(clone: Path) -> None:
    """The daemon alone (beside `make serve`). Dagster's daemon command never makes a temporary
    home, so it is the one command given DAGSTER_HOME: the repo root, nothing else."""
    before = set(_runs_db(clone, "SELECT daemon_id FROM daemon_heartbeats"))
    with _started(clone, "dagster-daemon", "dagster-daemon", "run",
                  DAGSTER_HOME=str(clone)) as (proc, log):
        seconds = _until("a daemon heartbeat", proc, log, lambda: set(_runs_db(
            clone, "SELECT daemon_id FROM daemon_heartbeats")) - before)
        print(f"dagster-daemon run: first heartbeat after {seconds:.1f} s")
