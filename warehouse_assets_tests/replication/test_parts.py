"""A window staged as several parts (STAGING_PART_MB set tiny): MariaDB -> S3 server ->
PostgreSQL on both readers, and SQLite -> local folder -> DuckDB, rows compared with the source;
a missing, extra or changed part fails the load naming it with the target unchanged; a rerun
with fewer parts removes the stale ones; a rerun after a crash between parts converges."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import os
import sqlite3

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets import demo
from warehouse_assets.lib.io_managers import manifest_key
from warehouse_assets.lib.parts import PartWriter, part_key, stored_parts
from warehouse_assets.lib.staged import Manifest
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.settings import Settings
from warehouse_assets_tests.conftest import failure_text, table_yaml

DAY = "2026-11-01"
ROWS = 60_000
PART_MB = "0.7"  # ~734 KB: one or two batches (10,000 rows pymysql, 20,000 Arrow) a part
EVENTS = table_yaml("events")
TARGET = "SELECT id, note, modified_at FROM raw_data.events ORDER BY id"


def _part_size(env, monkeypatch, mb: str) -> None:
    monkeypatch.setenv("STAGING_PART_MB", mb)
    env.settings = Settings.from_env()


def _key(env) -> str:
    return f"staging/{env.source_schema}/events/{DAY}.csv.gz"


def _manifest(env) -> Manifest:
    store = env.resource("staging")
    return Manifest.from_json(store.read_bytes(manifest_key(_key(env))).decode())


def _load_only(env, config) -> dg.ExecuteInProcessResult:
    """The warehouse table's step alone: it reads the staged window through the IO manager."""
    assets = build_replication_assets(config)
    return env.materialize(assets, selection=[dg.AssetKey(["raw_data", "events"])], start=DAY,
                           raise_on_error=False)


def _rows_in_part(store: StagingStore, key: str) -> list[list[str]]:
    """A part read on its own: a complete gzip file of whole CSV rows."""
    text = gzip.decompress(store.read_bytes(key)).decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def _mariadb_events(env, n: int = ROWS) -> None:
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE {env.source_schema}.events (id INT PRIMARY KEY, note VARCHAR(100) "
            "NOT NULL, modified_at DATETIME NOT NULL)"))
        # Values with commas, quotes and a newline: a part may only end between whole rows.
        conn.execute(sa.text(
            f"INSERT INTO {env.source_schema}.events SELECT seq, "
            "CONCAT('note, \"', seq, '\"\\nline two ', MD5(seq)), "
            f"'{DAY} 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{n}"))


def _mariadb_rows(env) -> list[tuple]:
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            f"SELECT id, note, modified_at FROM {env.source_schema}.events ORDER BY id"))]


def _loaded_in_parts(env, monkeypatch):
    """The events day staged in parts of PART_MB and loaded; its config."""
    _part_size(env, monkeypatch, PART_MB)
    _mariadb_events(env)
    config = env.config(EVENTS)
    assert env.replicate(config, start=DAY).success
    return config


@pytest.mark.usefixtures("extract_path")
def test_window_staged_as_parts_loads_exactly_the_source(services_env, monkeypatch):
    env = services_env
    _loaded_in_parts(env, monkeypatch)
    assert env.warehouse_rows("raw_data.events", "id") == _mariadb_rows(env)

    store, manifest = env.resource("staging"), _manifest(env)
    key = _key(env)
    assert len(manifest.parts) >= 3
    assert manifest.parts == tuple(part_key(key, i) for i in range(1, len(manifest.parts) + 1))
    assert set(stored_parts(store, key)) == set(manifest.parts)
    limit = int(float(PART_MB) * 1024 * 1024)
    sizes = {o.key: o.size for o in store.list(f"staging/{env.source_schema}/events")}
    assert all(sizes[k] <= limit for k in manifest.parts), sizes
    assert sum(sizes[k] for k in manifest.parts) == manifest.bytes
    # Each part alone is whole rows; together they are the window, in order.
    ids = [int(row[0]) for k in manifest.parts for row in _rows_in_part(store, k)]
    assert ids == list(range(1, ROWS + 1)) and manifest.rows == ROWS


def test_missing_extra_or_changed_part_fails_naming_it_and_changes_nothing(
        services_env, monkeypatch):
    env = services_env
    config = _loaded_in_parts(env, monkeypatch)
    before = env.warehouse_rows("raw_data.events", "id")
    store, manifest = env.resource("staging"), _manifest(env)
    second = manifest.parts[1]
    body = store.read_bytes(second)

    store.delete(second)
    result = _load_only(env, config)
    assert not result.success
    assert f"staged part {store.uri(second)} listed in its manifest is missing" in failure_text(
        result)
    assert env.warehouse_rows("raw_data.events", "id") == before

    store.write_bytes(second, body)  # the same bytes again: the same version on S3
    extra = part_key(_key(env), len(manifest.parts) + 1)
    store.write_bytes(extra, body)
    result = _load_only(env, config)
    assert not result.success
    assert f"staged part {store.uri(extra)} is not in its window's manifest" in failure_text(result)
    assert env.warehouse_rows("raw_data.events", "id") == before

    store.delete(extra)
    store.write_bytes(second, gzip.compress(b'1,"not, the same",2026-11-01 00:00:01\n'))
    result = _load_only(env, config)
    assert not result.success
    assert f"staged part {store.uri(second)} changed after its manifest" in failure_text(result)
    assert env.warehouse_rows("raw_data.events", "id") == before


def test_rerun_with_fewer_parts_removes_the_stale_ones(services_env, monkeypatch):
    env = services_env
    config = _loaded_in_parts(env, monkeypatch)
    assert len(_manifest(env).parts) >= 3
    _part_size(env, monkeypatch, "64")
    assert env.replicate(config, start=DAY).success
    store, key = env.resource("staging"), _key(env)
    assert _manifest(env).parts == (key,)
    assert sorted(o.key for o in store.list(f"staging/{env.source_schema}/events")) == [
        key, manifest_key(key)]
    assert env.warehouse_rows("raw_data.events", "id") == _mariadb_rows(env)


def test_crash_between_parts_then_rerun_converges(services_env, monkeypatch):
    env = services_env
    config = _loaded_in_parts(env, monkeypatch)
    before = env.warehouse_rows("raw_data.events", "id")
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text(f"UPDATE {env.source_schema}.events SET note = CONCAT('changed, ', MD5(id + 1))"))
    second = part_key(_key(env), 2)
    original = StagingStore.open_write

    @contextlib.contextmanager
    def crash_at_second(self, key: str):
        if key == second:
            raise RuntimeError("the process died between parts")
        with original(self, key) as fh:
            yield fh

    monkeypatch.setattr(StagingStore, "open_write", crash_at_second)
    assert not env.replicate(config, start=DAY, raise_on_error=False).success
    monkeypatch.setattr(StagingStore, "open_write", original)
    # The failed extract removed the part it had completed (part 1); the old manifest's other
    # parts are still there: that window is never loaded half old, half new.
    store = env.resource("staging")
    assert not store.exists(_key(env)) and store.exists(part_key(_key(env), 3))
    result = _load_only(env, config)
    assert not result.success
    assert f"staged part {store.uri(_key(env))} listed in its manifest is missing" in failure_text(
        result)
    assert env.warehouse_rows("raw_data.events", "id") == before
    assert env.replicate(config, start=DAY).success
    after = env.warehouse_rows("raw_data.events", "id")
    assert after == _mariadb_rows(env) and all(note.startswith("changed, ") for _, note, _ in after)


def test_embedded_window_staged_as_parts_loads_into_duckdb(embedded_env, monkeypatch):
    env = embedded_env
    _part_size(env, monkeypatch, "0.1")
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    con = sqlite3.connect(env.tmp / "prod.sqlite")
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, note VARCHAR(100) NOT NULL, "
                "modified_at DATETIME NOT NULL)")
    start = dt.datetime.fromisoformat(DAY)
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", [
        (i, f'note, "{i}"\nline two {i * 7919}', str(start + dt.timedelta(seconds=i)))
        for i in range(1, 40_001)])
    con.commit()
    source = [(i, n, dt.datetime.fromisoformat(m)) for i, n, m in con.execute(
        "SELECT id, note, modified_at FROM events ORDER BY id")]
    con.close()
    assert env.replicate(env.config(EVENTS), start=DAY).success
    assert len(_manifest(env).parts) >= 2
    assert env.warehouse_rows("raw_data.events", "id") == source


def test_part_writer_cuts_between_batches_within_the_limit(tmp_path):
    store = StagingStore(url=str(tmp_path))
    batches = [(f'{i},"a, ""quoted""\nvalue {i}"\n' * 50).encode() for i in range(40)]
    with PartWriter(store, "staging/t/w.csv.gz", 2_000) as sink:
        for b in batches:
            sink.write_batch(b)
        keys = sink.close()
    assert len(keys) > 1 and keys[0] == "staging/t/w.csv.gz"
    assert all((tmp_path / k).stat().st_size <= 2_000 for k in keys)
    assert b"".join(gzip.decompress(store.read_bytes(k)) for k in keys) == b"".join(batches)
    with PartWriter(store, "staging/t/empty.csv.gz", 2_000) as sink:
        assert sink.close() == ["staging/t/empty.csv.gz"]
    assert gzip.decompress(store.read_bytes("staging/t/empty.csv.gz")) == b""
    with pytest.raises(RuntimeError), PartWriter(store, "staging/t/x.csv.gz", 2_000) as sink:
        for b in batches:  # complete parts, then one being written
            sink.write_batch(b)
        assert sink.keys and sink._fh is not None
        raise RuntimeError("source went away")
    assert not list((tmp_path / "staging" / "t").glob("x*"))


def test_staging_part_mb_accepts_fractions_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("STAGING_PART_MB", "0.25")
    assert Settings.from_env().staging_part_mb == 0.25
    for bad in ("0", "-1", "2048", "lots"):
        monkeypatch.setenv("STAGING_PART_MB", bad)
        with pytest.raises(ValueError, match="STAGING_PART_MB"):
            Settings.from_env()
