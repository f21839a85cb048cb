"""Helpers for breaking things on purpose: a TCP proxy that makes the S3 server vanish mid-transfer,
backend lookups on PostgreSQL and MariaDB, and a source table big enough to be caught mid-stream."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import sqlalchemy as sa

from warehouse_assets_tests.conftest import table_yaml

T = TypeVar("T")

DAY = "2026-11-01"


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults surface at once: a transient failure is not retried minutes later."""
    monkeypatch.setenv("RETRY_MAX", "0")


def events_yaml(mode: str = "incremental") -> str:
    return table_yaml("events", mode=mode)


def rows(url: str, sql: str, params: dict | None = None) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params or {}).all()]


def execute(url: str, *sql: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for s in sql:
            conn.execute(sa.text(s))


def source_table(env, columns: str, values: str, *session: str) -> None:
    """(session statements, then) create the source table t with these columns and rows."""
    execute(os.environ["SOURCE_DB_URL"], *session,
            f"CREATE TABLE {env.source_schema}.t ({columns})",
            f"INSERT INTO {env.source_schema}.t VALUES {values}")


def seed_events(schema: str, n: int, salt: str = "") -> None:
    """(Re)create schema.events with n rows on DAY, each a 128-character hash (incompressible
    enough that the staged file grows with n)."""
    execute(
        os.environ["SOURCE_DB_URL"],
        f"CREATE TABLE IF NOT EXISTS {schema}.events (id INT PRIMARY KEY, body TEXT NOT NULL, "
        "modified_at DATETIME(6) NOT NULL)",
        f"DELETE FROM {schema}.events",
        f"INSERT INTO {schema}.events SELECT seq, SHA2(CONCAT(seq, '{salt}'), 512), "
        f"'{DAY} 00:00:00' + INTERVAL seq * 100 MICROSECOND FROM seq_1_to_{n}",
    )


def source_events(schema: str) -> list[tuple]:
    return rows(os.environ["SOURCE_DB_URL"], f"SELECT * FROM {schema}.events ORDER BY id")


def target_events() -> list[tuple]:
    return rows(os.environ["WAREHOUSE_DB_URL"], "SELECT * FROM raw_data.events ORDER BY id")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 120) -> T:
    """Poll until probe() is truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def pg_backends(where: str) -> list[int]:
    """PIDs of other sessions in the warehouse database matching a pg_stat_activity condition."""
    return [r[0] for r in rows(
        os.environ["WAREHOUSE_DB_URL"],
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        f"AND pid <> pg_backend_pid() AND {where}",
    )]


class VanishingProxy:
    """A TCP proxy in front of the S3 server that vanishes (resets every connection and refuses
    new ones) once a set number of bytes has passed in one direction: a server gone mid-transfer."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.budget: dict[str, int] = {}
        self.gone = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def vanish_after(self, direction: str, nbytes: int) -> None:
        """direction 'up' (client to server, an upload) or 'down' (a download)."""
        with self.lock:
            self.budget = {direction: nbytes}

    def heal(self) -> None:
        with self.lock:
            self.budget, self.gone = {}, False

    def close(self) -> None:
        self.server.close()
        self._reset_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.gone:
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    left = self.budget.get(direction)
                    if left is not None:
                        self.budget[direction] = left - len(data)
                if left is not None and left < len(data):
                    dst.sendall(data[:max(left, 0)])
                    self.gone = True
                    self._reset_all()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _shut(s)

    def _reset_all(self) -> None:
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            _shut(s)


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@pytest.fixture
def s3_proxy(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[VanishingProxy]:
    """The staging store talks to the S3 server through a proxy the test can make vanish."""
    proxy = VanishingProxy(s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.close()
