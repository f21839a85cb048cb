"""Retries: a connection reset is retried and the load completes; a data error runs once."""

import datetime as dt
import os
import socket
import struct
import threading

import botocore.exceptions
import dagster as dg
import pymysql
import pytest
import sqlalchemy as sa

from warehouse_assets import demo
from warehouse_assets.lib.source import SourceError
from warehouse_assets.lib.staged import DataError
from warehouse_assets.lib.warehouse import LoadError
from warehouse_assets.operations.retries import is_permanent, is_transient, retry_policy
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources
from warehouse_assets.settings import Operations, Settings
from warehouse_assets_tests.conftest import RANGE_END, RANGE_START, failure_text
from warehouse_assets_tests.operations import NPS_YAML


def _sa_error(orig: Exception) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError.instance("SELECT 1", {}, orig, pymysql.err.Error)


def _load_error_from(orig: Exception) -> LoadError:
    """A LoadError raised the way Warehouse.load raises it: `from None`, the DB error as context."""
    try:
        try:
            raise _sa_error(orig)
        except sa.exc.DBAPIError:
            raise LoadError("loading raw_data.nps failed, nothing was changed") from None
    except LoadError as exc:
        return exc


def _source_error_from(orig: Exception) -> SourceError:
    try:
        try:
            raise orig
        except RuntimeError as exc:
            raise SourceError(f"prod.nps: the fast reader failed ({exc})") from exc
    except SourceError as exc:
        return exc


def _s3_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize("exc", [
    ConnectionResetError(104, "Connection reset by peer"),
    _sa_error(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")),
    _sa_error(pymysql.err.OperationalError(2013, "Lost connection to MySQL server")),
    _load_error_from(pymysql.err.OperationalError(1213, "Deadlock found")),
    _s3_error("SlowDown", 503),
    _s3_error("InternalError", 500),
    botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
    _source_error_from(RuntimeError("timed out waiting for connection")),  # connectorx
])
def test_transient_failures_are_retried(exc):
    assert is_transient(exc) and not is_permanent(exc)


@pytest.mark.parametrize("exc", [
    DataError("prod.zero.happened: 0000-00-00 00:00:00 cannot be stored (id=2)"),
    LoadError("REDSHIFT_IAM_ROLE is not set"),
    _load_error_from(pymysql.err.DataError(1264, "Out of range value")),
    _sa_error(pymysql.err.OperationalError(1045, "Access denied for user")),
    _s3_error("AccessDenied", 403),
])
def test_data_and_configuration_errors_are_not(exc):
    assert not is_transient(exc)


def test_retry_policy_comes_from_settings(monkeypatch):
    monkeypatch.setenv("RETRY_MAX", "3")
    monkeypatch.setenv("RETRY_DELAY_SECONDS", "60")
    policy = retry_policy()
    assert (policy.max_retries, policy.delay, policy.backoff) == (3, 60, dg.Backoff.EXPONENTIAL)
    monkeypatch.delenv("RETRY_MAX")
    monkeypatch.delenv("RETRY_DELAY_SECONDS")
    seed = Operations.from_env()  # the seed: retries=1, retry_delay=timedelta(minutes=3)
    assert (seed.retries, seed.retry_delay_seconds) == (1, 180)


class ResettingProxy:
    """TCP proxy to MariaDB that resets (RST) its first `resets` connections, then forwards."""

    def __init__(self, upstream: str, resets: int = 1) -> None:
        url = sa.make_url(upstream)
        self.upstream = (url.host, url.port)
        self.left = resets
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.left:
                self.left -= 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # linger 0: the peer sees "connection reset", not a clean close
                continue
            upstream = socket.create_connection(self.upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def _events(result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType) -> list:
    return [e for e in result.all_events if e.event_type == kind]


def _nps_assets(env, monkeypatch) -> list:
    monkeypatch.setenv("RETRY_MAX", "2")
    monkeypatch.setenv("RETRY_DELAY_SECONDS", "0")  # the policy's delay, not the behaviour, varies
    return [a for a in build_replication_assets(env.config(NPS_YAML))
            if isinstance(a, dg.AssetsDefinition)]


def test_connection_reset_is_retried_and_the_day_loads(services_env, monkeypatch):
    env = services_env
    demo.seed(os.environ["SOURCE_DB_URL"], schema=env.source_schema)
    first, _ = demo.demo_days()
    day = (first + dt.timedelta(days=5)).isoformat()
    direct = sa.make_url(os.environ["SOURCE_DB_URL"])
    proxy = ResettingProxy(os.environ["SOURCE_DB_URL"])
    try:
        monkeypatch.setenv("SOURCE_DB_URL", direct.set(port=proxy.port).render_as_string(False))
        # The pymysql reader: connectorx's pool waits 30 s on a reset before it gives up.
        monkeypatch.setenv("SOURCE_FAST_PATH", "0")
        resources = build_resources(Settings.from_env())
        result = dg.materialize(
            _nps_assets(env, monkeypatch), resources=resources,
            instance=dg.DagsterInstance.ephemeral(), tags={RANGE_START: day, RANGE_END: day},
        )
    finally:
        proxy.close()
    assert result.success
    assert proxy.left == 0  # the reset really happened
    retried = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retried] == [f"staging__{env.source_schema}__nps"]
    assert "Connection reset by peer" in retried[0].event_specific_data.error.to_string()
    engine = sa.create_engine(direct)
    with engine.connect() as conn:
        expected = conn.execute(sa.text(
            f"SELECT id, score FROM {env.source_schema}.nps WHERE NOT deleted AND "
            "modified_at >= :d AND modified_at < :d + INTERVAL 1 DAY ORDER BY id"),
            {"d": day}).all()
    assert len(expected) > 5
    assert env.warehouse_rows("raw_data.nps", "id") and [
        (r[0], r[-1]) for r in env.warehouse_rows("raw_data.nps", "id")
    ] == [tuple(r) for r in expected]


def test_data_error_fails_at_once_without_retry(services_env, monkeypatch):
    env = services_env
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(
            f"CREATE TABLE {env.source_schema}.nps (id INT PRIMARY KEY, created_at DATETIME, "
            "modified_at DATETIME NOT NULL, deleted BOOL NOT NULL, score INT)"))
        conn.execute(sa.text(
            f"INSERT INTO {env.source_schema}.nps VALUES "
            "(1, '0000-00-00 00:00:00', '2026-11-01 10:00:00', 0, 7)"))
    result = dg.materialize(
        _nps_assets(env, monkeypatch), resources=env.resources,
        instance=dg.DagsterInstance.ephemeral(),
        tags={RANGE_START: "2026-11-01", RANGE_END: "2026-11-01"}, raise_on_error=False,
    )
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    starts = _events(result, dg.DagsterEventType.STEP_START)
    assert [e.step_key for e in starts] == [f"staging__{env.source_schema}__nps"]  # one attempt
    assert "0000-00-00 00:00:00" in failure_text(result)
