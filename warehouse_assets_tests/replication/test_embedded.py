"""The embedded default end to end: SQLite demo source -> local folder -> DuckDB."""

import datetime as dt
import sqlite3

import dagster as dg
import duckdb

from warehouse_assets import demo
from warehouse_assets.config import load_config
from warehouse_assets.replication.assets import build_replication_assets


def _source_rows(env, where: str = "NOT deleted") -> list[tuple]:
    con = sqlite3.connect(env.tmp / "prod.sqlite")
    rows = con.execute(
        f"SELECT id, created_at, modified_at, deleted, score FROM nps WHERE {where} ORDER BY id"
    ).fetchall()
    con.close()
    parse = dt.datetime.fromisoformat
    return [(i, parse(c), parse(m), bool(d), s) for i, c, m, d, s in rows]


def _warehouse(env, sql: str) -> list[tuple]:
    con = duckdb.connect(str(env.tmp / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_days_load_exactly_the_source(embedded_env):
    env = embedded_env
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    first, last = demo.demo_days()
    config = load_config()
    result = env.replicate(config, start=first.isoformat(), end=last.isoformat())
    assert result.success

    expected = _source_rows(env)
    assert len(expected) > 500
    got = _warehouse(env, "SELECT id, created_at, modified_at, deleted, score FROM raw_data.nps ORDER BY id")
    assert got == expected
    channels = _warehouse(env, "SELECT channel FROM raw_data.channel ORDER BY channel")
    assert [c for (c,) in channels] == sorted(demo.CHANNELS)

    # Running the same range again changes nothing.
    env.replicate(config, start=first.isoformat(), end=last.isoformat())
    assert _warehouse(env, "SELECT id, created_at, modified_at, deleted, score FROM raw_data.nps ORDER BY id") == expected


def test_update_and_soft_delete_reach_the_target_in_their_day(embedded_env):
    env = embedded_env
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    first, last = demo.demo_days()
    config = load_config()
    env.replicate(config, start=first.isoformat(), end=last.isoformat())

    # In the source: row 1 is updated and row 2 soft-deleted, both on the last demo day.
    when = dt.datetime.combine(last, dt.time(23, 59, 59, 999999))
    con = sqlite3.connect(env.tmp / "prod.sqlite")
    con.execute("UPDATE nps SET score = 3, modified_at = ? WHERE id = 1", (when.isoformat(" "),))
    con.execute("UPDATE nps SET deleted = 1, modified_at = ? WHERE id = 2", (when.isoformat(" "),))
    con.commit()
    con.close()

    nps = [a for a in build_replication_assets(config) if isinstance(a, dg.AssetsDefinition)]
    nps = [a for a in nps if a.partitions_def]
    env.materialize(nps, start=last.isoformat())
    got = _warehouse(env, "SELECT id, created_at, modified_at, deleted, score FROM raw_data.nps ORDER BY id")
    assert got == _source_rows(env)
    ids = {r[0] for r in got}
    assert 2 not in ids and (1, 3) in {(r[0], r[4]) for r in got}


def test_materialization_metadata_is_evidence(embedded_env):
    env = embedded_env
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    _, last = demo.demo_days()
    result = env.replicate(load_config(), start=last.isoformat())
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("raw_data__channel")}
    md = mats["raw_data/channel"]
    assert md["rows_written"].value == 6 and md["target_rows"].value == 6
    assert str(md["staged_uris"].value).endswith("staging/prod/channel/full.csv.gz")


def test_demo_source_seeds_itself_once_and_never_overwrites(embedded_env):
    """A fresh clone's first run seeds the demo source; a source that exists is left alone."""
    env = embedded_env
    assert not (env.tmp / "prod.sqlite").exists()
    assert type(env.resources["source_db"]).__name__ == "DemoSourceDatabase"
    result = env.replicate(load_config(), start=demo.demo_days()[1].isoformat())
    assert result.success
    con = sqlite3.connect(env.tmp / "prod.sqlite")
    con.execute("DELETE FROM nps WHERE id = 1")
    con.commit()
    con.close()
    assert demo.seed_if_missing(f"sqlite:///{env.tmp / 'source.sqlite'}") is False
    assert len(_source_rows(env, "1 = 1")) == demo.DEMO_ROWS - 1
