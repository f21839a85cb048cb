"""PostgreSQL readers querying a summary while it is rebuilt again and again never fail and never
see it missing, empty or half-built: each read is exactly the old or the new table."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.summaries import build
from warehouse_assets.summaries.config import load_summaries
from warehouse_assets_tests.summaries.conftest import nps_rows, set_rows

REBUILDS = 40
READ = "SELECT COUNT(*), SUM(responses), SUM(promoters) FROM analytics.nps_summary"


@pytest.fixture
def pg_warehouse(postgres_db: str, tmp_path: Path) -> Warehouse:
    wh = Warehouse(url=postgres_db)
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA raw_data"))
        conn.execute(sa.text("CREATE TABLE raw_data.nps (id INT, created_at TIMESTAMP, "
                             "modified_at TIMESTAMP, deleted BOOLEAN, score SMALLINT)"))
    return wh


def test_readers_see_a_complete_table_during_rebuilds(pg_warehouse: Warehouse, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wh = pg_warehouse
    shipped = load_summaries()
    spec = next(s for s in shipped if s.target == "analytics.nps_summary")
    # Every other rebuild also changes the SELECT's columns, so the table itself is replaced.
    wider = spec.__class__(**{**spec.__dict__, "select": spec.select.replace(
        "FROM raw_data.nps", ", 1 AS version FROM raw_data.nps")})
    key = dg.AssetKey(["analytics", "nps_summary"])
    inputs = [nps_rows(seed=1, n=300), nps_rows(seed=2, n=500)]
    states = set()
    for rows in inputs:  # the complete tables a reader may see
        states.add((len({r["created_at"].date() for r in rows}), len(rows),
                    sum(r["score"] >= 9 for r in rows)))
    set_rows(wh, "raw_data.nps", inputs[0])
    assert build.build_summary(wh, spec, key).swapped

    # Between a DELETE + INSERT swap and its commit, a reader on another connection must get the
    # old table at once (not wait for the rebuild's lock, not see it empty): a handshake forces
    # that moment. (Replacing the table for new columns locks it: readers wait, then read it.)
    mid_swap, probed = threading.Event(), threading.Event()
    preview = build._preview
    probing = [False]

    def paused_preview(conn, table):
        if not probing[0]:
            return preview(conn, table)
        mid_swap.set()
        assert probed.wait(60), "a reader was blocked by the uncommitted swap"
        probed.clear()
        return preview(conn, table)

    monkeypatch.setattr(build, "_preview", paused_preview)
    stop = threading.Event()
    seen: list[tuple] = []
    probes: list[tuple] = []
    errors: list[str] = []

    def prober() -> None:
        engine = sa.create_engine(wh.url)
        while not stop.is_set():
            if mid_swap.wait(0.1):
                mid_swap.clear()
                with engine.connect() as conn:
                    probes.append(tuple(conn.execute(sa.text(READ)).one()))
                probed.set()
        engine.dispose()

    def reader(fresh: bool) -> None:
        engine = sa.create_engine(wh.url)
        conn = engine.connect()
        while not stop.is_set():
            try:
                if fresh:
                    conn.close()
                    conn = engine.connect()
                seen.append(tuple(conn.execute(sa.text(READ)).one()))
                conn.commit()
            except sa.exc.DBAPIError as exc:
                errors.append(str(exc.orig).strip())
                conn.rollback()
        conn.close()
        engine.dispose()

    threads = [threading.Thread(target=prober)] + [
        threading.Thread(target=reader, args=(fresh,)) for fresh in (True, False, False)]
    for t in threads:
        t.start()
    try:
        for i in range(REBUILDS):
            set_rows(wh, "raw_data.nps", inputs[i % 3 == 0])
            probing[0] = i % 2 == 1  # odd builds keep the columns of the one before
            result = build.build_summary(wh, wider if i % 4 < 2 else spec, key)
            assert result.swapped and result.recreated == (i % 2 == 0), result.checks
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert errors == []
    assert len(probes) == REBUILDS // 2
    observed = {tuple(None if v is None else int(v) for v in row) for row in seen + probes}
    assert seen and observed <= states  # an empty or half-built table would add a state
    assert tuple(int(v) for v in wh.query(READ)[0]) in states
