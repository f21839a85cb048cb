"""summaries.yaml is validated when definitions load; errors name the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse_assets.config import ConfigError
from warehouse_assets.summaries.config import load_summaries


def test_shipped_list() -> None:
    specs = {s.target: s for s in load_summaries()}
    assert set(specs) == {"analytics.channel_summary", "analytics.nps_summary"}
    assert specs["analytics.nps_summary"].ranges["nps"] == (-100, 100)
    assert specs["analytics.channel_summary"].deps == (
        ("raw_data", "user_session_channel"), ("raw_data", "session_timestamp"))
    assert "FIRST_VALUE(a.channel)" in specs["analytics.channel_summary"].select


@pytest.mark.parametrize("entry, message", [
    ("{target: analytics.x, sql: x.sql}", r"summaries\[0\] \(analytics.x\).deps: required"),
    ("{target: x, sql: x.sql, deps: [raw_data.t]}", r"\.target: 'x' must be schema.table"),
    ("{target: analytics.x, sql: x.sql, deps: [raw_data.t], unique_key: [a b]}",
     r"\(analytics.x\).unique_key: 'a b' is not a plain identifier"),
    ("{target: analytics.x, sql: x.sql, deps: [raw_data.t], ranges: {n: [5, 1]}}",
     r"\(analytics.x\).ranges.n: \[5, 1\] must be \[min, max\]"),
    ("{target: analytics.x, sql: missing.sql, deps: [raw_data.t]}",
     r"\(analytics.x\).sql: cannot read .*missing.sql"),
    ("{target: analytics.x, sql: two.sql, deps: [raw_data.t]}",
     r"\(analytics.x\).sql: two.sql must hold exactly one SELECT"),
    ("{target: analytics.x, sql: x.sql, deps: [raw_data.t], shedule: daily}",
     r"\(analytics.x\): unknown field\(s\) shedule"),
])
def test_bad_entry_names_entry_and_field(tmp_path: Path, entry: str, message: str) -> None:
    (tmp_path / "x.sql").write_text("SELECT 1 AS n")
    (tmp_path / "two.sql").write_text("DELETE FROM raw_data.t; SELECT 1")
    path = tmp_path / "summaries.yaml"
    path.write_text(f"summaries:\n  - {entry}\n")
    with pytest.raises(ConfigError, match=message):
        load_summaries(path)
