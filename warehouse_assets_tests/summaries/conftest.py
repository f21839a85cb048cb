"""Summary tests: a warehouse (DuckDB, or a fresh PostgreSQL database) holding known input rows."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.summaries.assets import build_summary_assets
from warehouse_assets.summaries.config import load_summaries

INPUTS = {
    "raw_data.nps": "id INT, created_at TIMESTAMP, modified_at TIMESTAMP, deleted BOOLEAN, "
                    "score SMALLINT",
    "raw_data.user_session_channel": "userid INT, sessionid VARCHAR(32), channel VARCHAR(32)",
    "raw_data.session_timestamp": "sessionid VARCHAR(32), ts TIMESTAMP",
}
CHANNELS = ("Google", "Facebook", "Naver", "Instagram", "Youtube", "Organic")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """An empty warehouse with the three input tables created."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_db")
    wh = Warehouse(url=url)
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA raw_data"))
        for table, columns in INPUTS.items():
            conn.execute(sa.text(f"CREATE TABLE {table} ({columns})"))
    return wh


def set_rows(wh: Warehouse, table: str, rows: Iterable[dict]) -> None:
    """Replace an input table's rows."""
    rows = list(rows)
    with wh.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {table}"))
        if rows:
            cols = list(rows[0])
            conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                                 f"({', '.join(':' + c for c in cols)})"), rows)


def nps_rows(seed: int = 1, n: int = 400) -> list[dict]:
    """Responses with hand-made half-way NPS days (6.25, -6.25) plus random ones."""
    rows = []

    def add(created: dt.datetime, score: int) -> None:
        rows.append({"id": len(rows) + 1, "created_at": created, "modified_at": created,
                     "deleted": False, "score": score})

    for i, score in enumerate([10, 9, 10, 9, 9] + [0, 3, 6, 5] + [7, 8] * 3 + [8]):
        add(dt.datetime(2024, 3, 1, 0, 0) + dt.timedelta(minutes=i), score)  # 16: +6.25
    for i, score in enumerate([10, 9, 10, 9] + [0, 3, 6, 5, 1] + [7, 8] * 3 + [8]):
        add(dt.datetime(2024, 3, 2, 23, 59, 59, 999999) - dt.timedelta(minutes=i), score)  # -6.25
    rnd = random.Random(seed)
    for _ in range(n):
        add(dt.datetime(2024, 3, 3) + dt.timedelta(seconds=rnd.randrange(20 * 86400)),
            rnd.randint(0, 10))
    return rows


def session_rows(seed: int = 2, users: int = 60) -> tuple[list[dict], list[dict]]:
    """Sessions per user, with equal timestamps (tie on sessionid) and sessions without one."""
    rnd = random.Random(seed)
    sessions, stamps = [], []
    base = dt.datetime(2024, 3, 1)
    for user in range(1, users + 1):
        for s in range(rnd.randint(1, 5)):
            sid = f"{rnd.getrandbits(64):016x}{user:04d}{s:02d}"
            sessions.append({"userid": user, "sessionid": sid, "channel": rnd.choice(CHANNELS)})
            if rnd.random() < 0.9:  # the rest have no timestamp: they sort last
                ts = base + dt.timedelta(hours=rnd.randrange(6))  # few values: many ties
                stamps.append({"sessionid": sid, "ts": ts})
    return sessions, stamps


def materialize(wh: Warehouse, select: str | list[str], yaml_path: Path | None = None,
                instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Run the summary assets selected, from the shipped list or another summaries file."""
    return dg.materialize(
        build_summary_assets(load_summaries(yaml_path)),
        selection=select,
        resources={"warehouse": wh},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def tables_in(wh: Warehouse, schema: str) -> list[str]:
    """Every table in schema, to prove no build table was left behind."""
    return [r[0] for r in wh.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s ORDER BY 1",
        {"s": schema})]
