"""`make run` leaves both summaries in the embedded DuckDB consistent with the demo data."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import sys

import pytest

from warehouse_assets import demo
from warehouse_assets_tests.conftest import Env
from warehouse_assets_tests.summaries.test_build import expected_channels, expected_nps

DEFINITIONS = "warehouse_assets.definitions"


def _rows(data: bytes) -> list[dict]:
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_make_run_builds_summaries_from_demo_data(embedded_env: Env,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # an ephemeral instance, not the dev one
    import warehouse_assets
    from warehouse_assets import run

    # run.main imports the definitions afresh, so their resources follow this test's settings.
    monkeypatch.delitem(sys.modules, DEFINITIONS, raising=False)
    monkeypatch.delattr(warehouse_assets, "definitions", raising=False)
    try:
        run.main()
    finally:
        sys.modules.pop(DEFINITIONS, None)

    nps = [r for r in demo.nps_rows() if not r["deleted"]]
    assert embedded_env.warehouse_rows("analytics.nps_summary") == expected_nps(nps)
    files = demo.landing_files()
    sessions = [{**r, "userid": int(r["userid"])} for k, data in files.items()
                if "user_session_channel" in k for r in _rows(data)]
    stamps = [{**r, "ts": dt.datetime.fromisoformat(r["ts"])} for k, data in files.items()
              if "session_timestamp" in k for r in _rows(data)]
    want = expected_channels(sessions, stamps)
    assert len(want) == demo.DEMO_USERS
    assert embedded_env.warehouse_rows("analytics.channel_summary") == want
