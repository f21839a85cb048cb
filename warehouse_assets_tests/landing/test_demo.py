"""`make run`'s landing part: the demo files load into the warehouse exactly as written."""

import csv
import datetime as dt
import gzip
import io

import dagster as dg

from warehouse_assets import demo
from warehouse_assets.config import load_config
from warehouse_assets.landing.assets import build_landing_assets


def _file_rows(files: dict[str, bytes], table: str) -> list[list[str]]:
    rows = []
    for key, data in files.items():
        if key.startswith(f"landing/{table}/"):
            text = (gzip.decompress(data) if key.endswith(".gz") else data).decode()
            rows += list(csv.reader(io.StringIO(text, newline="")))[1:]
    return rows


def test_demo_landing_files_load_row_by_row(embedded_env):
    env = embedded_env
    store = env.resource("staging")
    files = demo.landing_files()
    assert demo.write_landing(store) == len(files) == 2 * demo.DEMO_DAYS
    assert demo.write_landing(store) == 0  # unchanged files are not rewritten

    first, last = demo.demo_days()
    assets = [a for a in build_landing_assets(load_config()) if isinstance(a, dg.AssetsDefinition)]
    assert env.materialize(assets, start=first.isoformat(), end=last.isoformat()).success

    sessions = sorted((int(u), s, c) for u, s, c in _file_rows(files, "user_session_channel"))
    assert len(sessions) == demo.DEMO_DAYS * demo.DEMO_SESSIONS_PER_DAY
    assert {c for _, _, c in sessions} <= set(demo.CHANNELS)
    got = env.warehouse_rows("raw_data.user_session_channel", "userid, sessionid")
    assert got == sessions
    stamps = sorted((s, dt.datetime.fromisoformat(t)) for s, t in
                    _file_rows(files, "session_timestamp"))
    assert env.warehouse_rows("raw_data.session_timestamp", "sessionid") == stamps
    assert {s for s, _ in stamps} == {s for _, s, _ in sessions}
