"""Demo source data: prod.nps over the last 30 complete days (with updates and soft deletes)
and prod.channel. Seeds the embedded SQLite source, or any SQLAlchemy URL (tests use MariaDB)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import sqlalchemy as sa

CHANNELS = ("Google", "Facebook", "Naver", "Instagram", "Youtube", "Organic")
DEMO_DAYS = 30
DEMO_ROWS = 600


def demo_days(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """First and last day holding demo rows: the 30 complete days before today (UTC)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
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
