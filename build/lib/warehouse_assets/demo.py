"""Demo source data: prod.nps over the last 30 complete days (with updates and soft deletes)
and prod.channel. Seeds the embedded SQLite source, or any SQLAlchemy URL (tests use MariaDB)."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import gzip
import io
import random
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from warehouse_assets.lib.source.database import SourceDatabase
from warehouse_assets.lib.staging import StagingStore

CHANNELS = ("Google", "Facebook", "Naver", "Instagram", "Youtube", "Organic")
DEMO_DAYS = 30
DEMO_ROWS = 600
DEMO_USERS = 50
DEMO_SESSIONS_PER_DAY = 40


def demo_days(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """First and last day holding demo rows: the 30 complete days before today (UTC)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=DEMO_DAYS), today - dt.timedelta(days=1)


def nps_rows(today: dt.date | None = None, rows: int = DEMO_ROWS, seed: int = 5) -> list[dict]:
    """Responses created over the demo days; some modified later, some soft-deleted."""
    first, last = demo_days(today)
    start = dt.datetime.combine(first, dt.time())
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    span = int((end - start).total_seconds() * 1_000_000)
    rnd = random.Random(seed)
    out = []
    for i in range(1, rows + 1):
        created = start + dt.timedelta(microseconds=rnd.randrange(span))
        modified = created
        if rnd.random() < 0.2:  # a later update, still before today
            left = int((end - created).total_seconds() * 1_000_000)
            modified = created + dt.timedelta(microseconds=rnd.randrange(left))
        out.append(
            {
                "id": i,
                "created_at": created,
                "modified_at": modified,
                "deleted": rnd.random() < 0.05,
                "score": rnd.randint(0, 10),
            }
        )
    return out


def tables(metadata: sa.MetaData, schema: str = "prod") -> tuple[sa.Table, sa.Table]:
    nps = sa.Table(
        "nps",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("modified_at", sa.DateTime, nullable=False, index=True),
        sa.Column("deleted", sa.Boolean, nullable=False, default=False),
        sa.Column("score", sa.SmallInteger, nullable=False),
        schema=schema,
    )
    channel = sa.Table(
        "channel",
        metadata,
        sa.Column("channel", sa.String(32), primary_key=True),
        schema=schema,
    )
    return nps, channel


def seed(url: str, schema: str = "prod", today: dt.date | None = None) -> dict[str, int]:
    """(Re)create the demo tables at url; returns rows per table."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        db = Path(sa.make_url(url).database)
        db.parent.mkdir(parents=True, exist_ok=True)
        (db.parent / f"{schema}.sqlite").unlink(missing_ok=True)
        engine = sa.create_engine(url)

        @sa.event.listens_for(engine, "connect")
        def _attach(dbapi_conn, _record) -> None:
            dbapi_conn.execute(f'ATTACH DATABASE ? AS "{schema}"', (str(db.parent / f"{schema}.sqlite"),))

    elif engine.dialect.name in ("mysql", "mariadb"):
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{schema}`"))
    metadata = sa.MetaData()
    nps, channel = tables(metadata, schema)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    rows = nps_rows(today)
    with engine.begin() as conn:
        conn.execute(nps.insert(), rows)
        conn.execute(channel.insert(), [{"channel": c} for c in CHANNELS])
    engine.dispose()
    return {f"{schema}.nps": len(rows), f"{schema}.channel": len(CHANNELS)}


def seed_if_missing(url: str) -> bool:
    """Seed the embedded SQLite demo source unless it exists: True if it was seeded now."""
    db = Path(sa.make_url(url).database)
    db.parent.mkdir(parents=True, exist_ok=True)
    # Concurrent first runs (a fresh clone's `dagster dev` with several launches) seed once: the
    # lock is held while checking and seeding, and an existing file of any schema is never reseeded.
    with (db.parent / ".seed.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if db.exists() or any(db.parent.glob("*.sqlite")):
            return False
        seed(url)
        return True


class DemoSourceDatabase(SourceDatabase):
    """The embedded default's source: the demo database, seeded on first use in a fresh clone, so
    `dg launch` and `dagster dev` work before `make run` ever ran."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if seed_if_missing(self.url) and context.log:
            context.log.info(f"seeded the demo source {self.url} (it was missing)")


def _csv(header: tuple[str, ...], rows: list[tuple], compress: bool) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    data = buf.getvalue().encode()
    return gzip.compress(data, mtime=0) if compress else data  # mtime=0: same rows, same bytes


def landing_files(today: dt.date | None = None, seed: int = 7) -> dict[str, bytes]:
    """What the outside exporter drops for the demo days: each day's sessions of the demo users
    with their channel (plain CSV) and the sessions' start times (gzip CSV)."""
    first, last = demo_days(today)
    rnd = random.Random(seed)
    files = {}
    day = first
    while day <= last:
        start = dt.datetime.combine(day, dt.time())
        sessions = [
            (rnd.randint(1, DEMO_USERS), f"{rnd.getrandbits(128):032x}", rnd.choice(CHANNELS),
             start + dt.timedelta(seconds=rnd.randrange(86400)))
            for _ in range(DEMO_SESSIONS_PER_DAY)
        ]
        files[f"landing/user_session_channel/{day}/sessions.csv"] = _csv(
            ("userid", "sessionid", "channel"), [s[:3] for s in sessions], compress=False)
        files[f"landing/session_timestamp/{day}/sessions.csv.gz"] = _csv(
            ("sessionid", "ts"), [(s[1], s[3].isoformat(sep=" ")) for s in sessions], compress=True)
        day += dt.timedelta(days=1)
    return files


def write_landing(store: StagingStore, today: dt.date | None = None) -> int:
    """Drop the demo landing files into the store; unchanged files are left alone, so a landing
    sensor does not see them as rewritten. Returns the number of files written."""
    written = 0
    for key, data in landing_files(today).items():
        if not store.exists(key) or store.read_bytes(key) != data:
            store.write_bytes(key, data)
            written += 1
    return written
