"""Faults on purpose against the real services: the warehouse connection terminated mid-load, the
S3 server vanishing mid-upload and mid-download, the source connection killed mid-stream. Each
run fails, leaves the target exactly as it was, and a rerun ends with exactly the source's rows."""

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.reliability.conftest import (
    DAY,
    events_yaml,
    execute,
    pg_backends,
    rows,
    seed_events,
    source_events,
    target_events,
    wait_for,
)


@contextlib.contextmanager
def _meanwhile(fault, release: threading.Event) -> Iterator[None]:
    """Run fault() in a thread while the block runs the pipeline (Dagster stays on the main
    thread), then release the paused pipeline whatever happened; fault's errors are raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fault()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            errors.append(exc)
        finally:
            release.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join()
    if errors:
        raise errors[0]


def _loaded_once(env, mode: str = "incremental", n: int = 3000) -> tuple:
    """Seed the source, load it, then change every row: returns (config, rows in the target)."""
    seed_events(env.source_schema, n)
    config = env.config(events_yaml(mode))
    assert env.replicate(config, start=DAY).success
    before = target_events()
    assert before == source_events(env.source_schema)
    seed_events(env.source_schema, n + 500, salt="v2")  # the next load would change every row
    return config, before


@contextlib.contextmanager
def _paused_copy(monkeypatch) -> Iterator[threading.Event]:
    """The staged file's reader stalls after its first chunk: the COPY is open, half fed."""
    release = threading.Event()
    original = StagingStore.open_read

    @contextlib.contextmanager
    def open_read(self, key: str):
        with original(self, key) as stream:
            if not key.endswith(".csv.gz"):
                yield stream
                return
            first = [True]
            read = stream.read

            def stalling_read(*args):
                if not first[0]:
                    release.wait()
                first[0] = False
                return read(*args)

            stream.read = stalling_read
            yield stream

    monkeypatch.setattr(StagingStore, "open_read", open_read)
    yield release
    release.set()


@contextlib.contextmanager
def _paused_merge(first_id: int = 1) -> Iterator[threading.Event]:
    """Another session holds a row of the target: the load's DELETE waits on it, mid-merge."""
    engine = sa.create_engine(os.environ["WAREHOUSE_DB_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM raw_data.events WHERE id = :i FOR UPDATE"),
                     {"i": first_id})
        yield threading.Event()  # the lock is released when the block ends
        conn.rollback()


@pytest.mark.parametrize("phase, mode", [("copy", "incremental"), ("merge", "incremental"),
                                         ("merge", "full_refresh")])
def test_warehouse_connection_terminated_mid_load(services_env, monkeypatch, phase, mode):
    env = services_env
    config, before = _loaded_once(env, mode)
    pause = _paused_copy(monkeypatch) if phase == "copy" else _paused_merge()
    statement = "COPY %" if phase == "copy" else "DELETE FROM %"

    def terminate() -> None:
        (pid,) = wait_for(lambda: pg_backends(f"state = 'active' AND query LIKE '{statement}'"),
                          f"the load's {statement}")
        assert rows(os.environ["WAREHOUSE_DB_URL"], "SELECT pg_terminate_backend(:p)",
                    {"p": pid}) == [(True,)]

    with pause as release, _meanwhile(terminate, release):
        result = env.replicate(config, start=DAY, raise_on_error=False)
    assert not result.success
    assert "loading raw_data.events failed, nothing was changed" in failure_text(result)
    assert target_events() == before
    assert env.replicate(config, start=DAY).success
    assert target_events() == source_events(env.source_schema)


def _staged(env) -> tuple[bytes, bytes]:
    """The staged data file and manifest of DAY, as they are in the S3 bucket."""
    store = env.resource("staging")
    key = f"staging/{env.source_schema}/events/{DAY}"
    return store.read_bytes(f"{key}.csv.gz"), store.read_bytes(f"{key}.manifest.json")


def test_s3_server_vanishing_mid_upload(services_env, s3_proxy):
    env = services_env
    config, before = _loaded_once(env)
    staged = _staged(env)
    assert len(staged[0]) > 128 * 1024
    s3_proxy.vanish_after("up", 64 * 1024)  # inside the data file's upload
    result = env.replicate(config, start=DAY, raise_on_error=False)
    assert not result.success
    s3_proxy.heal()
    assert _staged(env) == staged  # the complete earlier file, never a half-written one
    assert target_events() == before
    assert env.replicate(config, start=DAY).success
    assert target_events() == source_events(env.source_schema)


def test_s3_server_vanishing_mid_download(services_env, s3_proxy):
    env = services_env
    config, before = _loaded_once(env)
    assets = build_replication_assets(config)
    staging, target = (dg.AssetKey(["staging", env.source_schema, "events"]),
                       dg.AssetKey(["raw_data", "events"]))
    assert env.materialize(assets, selection=[staging], start=DAY).success
    s3_proxy.vanish_after("down", 64 * 1024)  # the manifest passes, the data file is cut
    result = env.materialize(assets, selection=[target], start=DAY, raise_on_error=False)
    assert not result.success
    assert target_events() == before
    s3_proxy.heal()
    assert env.materialize(assets, selection=[target], start=DAY).success
    assert target_events() == source_events(env.source_schema)


class _StallingWriter:
    """A staged file that waits for release once 1 MB is written: the extract stops reading its
    rows in the middle of the result."""

    def __init__(self, fh, release: threading.Event):
        self._fh, self._release, self._written = fh, release, 0

    def write(self, data) -> int:
        self._written += len(data)
        if self._written > 1 << 20:
            self._release.wait()
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)


@pytest.mark.parametrize("reader", ["pymysql", "connectorx"])
def test_source_connection_killed_mid_stream(services_env, monkeypatch, reader):
    env = services_env
    env.settings = dataclasses.replace(env.settings, source_fast_path=reader == "connectorx")
    # Far more rows than the socket buffers hold, so the query is still sending when killed.
    config, before = _loaded_once(env, n=250_000)
    staged = _staged(env)
    release = threading.Event()
    original = StagingStore.open_write

    @contextlib.contextmanager
    def open_write(self, key: str):
        with original(self, key) as fh:
            yield _StallingWriter(fh, release) if key.endswith(".csv.gz") else fh

    monkeypatch.setattr(StagingStore, "open_write", open_write)

    def kill() -> None:
        (conn_id,) = wait_for(lambda: [r[0] for r in rows(
            os.environ["SOURCE_DB_URL"],
            "SELECT id FROM information_schema.processlist WHERE db = :db AND info LIKE 'SELECT%' "
            "AND command IN ('Query', 'Execute') AND id <> CONNECTION_ID()",  # connectorx prepares
            {"db": env.source_schema})],
            "the extract's SELECT")
        execute(os.environ["SOURCE_DB_URL"], f"KILL CONNECTION {int(conn_id)}")

    with _meanwhile(kill, release):
        result = env.replicate(config, start=DAY, raise_on_error=False)
    assert not result.success
    assert _staged(env) == staged
    assert target_events() == before
    monkeypatch.setattr(StagingStore, "open_write", original)
    assert env.replicate(config, start=DAY).success
    assert target_events() == source_events(env.source_schema)
