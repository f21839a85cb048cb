"""Every common MySQL column type, edge values included, through both readers into PostgreSQL
(bytea and PostGIS), DuckDB and the Redshift statements; each value compared with what MariaDB
itself returns for it."""

from __future__ import annotations

import decimal
import json
import os

import pytest
import sqlalchemy as sa

from warehouse_assets.lib.staged import Column, DataError, Manifest, StagedFile
from warehouse_assets.lib.warehouse import RedshiftDialect, TableLoad
from warehouse_assets.settings import Settings
from warehouse_assets_tests.conftest import Env, failure_text

pytestmark = pytest.mark.usefixtures("extract_path")  # every test: both readers

CORPUS_DDL = """
CREATE TABLE {s}.corpus (
  id INT UNSIGNED PRIMARY KEY,
  b4 BINARY(4) NULL, vb VARBINARY(300) NULL, tb TINYBLOB NULL, bl BLOB NULL,
  mb MEDIUMBLOB NULL, lb LONGBLOB NULL,
  yr YEAR NULL, bit1 BIT(1) NULL, bit5 BIT(5) NULL, bit64 BIT(64) NULL,
  g GEOMETRY NULL, pt POINT NULL, ls LINESTRING NULL, pg POLYGON NULL, mpt MULTIPOINT NULL,
  gc GEOMETRYCOLLECTION NULL,
  en ENUM('a', 'bb', '日本語') NULL, st SET('x', 'yy', 'ü') NULL,
  j JSON NULL, tm TIME NULL,
  lat1 VARCHAR(20) CHARACTER SET latin1 NULL, u3 VARCHAR(20) CHARACTER SET utf8mb3 NULL,
  u4 VARCHAR(20) CHARACTER SET utf8mb4 NULL, ubin VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  ti TINYINT UNSIGNED NULL, si SMALLINT UNSIGNED NULL, mi MEDIUMINT UNSIGNED NULL,
  ii INT UNSIGNED NULL, bi BIGINT UNSIGNED NULL,
  `order` INT NULL, `desc` VARCHAR(10) NULL, `key` INT NULL, `group` INT NULL, `rank` INT NULL,
  `Mixed Case` VARCHAR(10) NULL
) CHARACTER SET utf8mb4
"""
MB = 1024 * 1024
GEOMS = {  # column: (WKT, SRID) per row; every SRID in use: 0, 4326, 3857
    "g": ["POINT(1.5 -2.25)", "LINESTRING(0 0, 1 1)", "POLYGON((0 0, 4 0, 4 4, 0 0))"],
    "pt": ["POINT(126.978 37.5665)", "POINT(0 0)", "POINT(-180 90)"],
    "ls": ["LINESTRING(0 0, 10 10, 20 25)", "LINESTRING(1 1, 2 2)", "LINESTRING(-1 -1, 1 1)"],
    "pg": ["POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))",
           "POLYGON((0 0, 1 0, 1 1, 0 0))", "POLYGON((5 5, 6 5, 6 6, 5 5))"],
    "mpt": ["MULTIPOINT(1 1, 2 2)", "MULTIPOINT(0 0)", "MULTIPOINT(3 4, 5 6, 7 8)"],
    "gc": ["GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(0 0, 1 1))", "GEOMETRYCOLLECTION(POINT(2 3))",
           "GEOMETRYCOLLECTION(POINT(0 0))"],
}
SRIDS = [4326, 0, 3857]
ROWS = [
    # id, b4, vb, tb, bl, mb, lb, yr, bit1, bit5, bit64, en, st, j, tm, lat1, u3, u4, ubin,
    # ti, si, mi, ii, bi, order, desc, key, group, rank, Mixed Case
    (1, b"\x00\x00\x00\x00", b"", b"\xff" * 255, bytes(range(256)) * 4, os.urandom(MB),
     b"\x00\xff\x00", 0, 1, 31, 2**64 - 1, "日本語", "x,yy,ü", '{"a": [1, 2.50, "é"], "b": null}',
     "00:00:00", "café", "日本", "😀 ok", "Case", 255, 65535, 16777215, 4294967295, 2**64 - 1,
     1, "d", 2, 3, 4, "m"),
    (2, b"\xff\xfe\x00\x01", b"\x00", b"", b"\\N,\"\n\r", b"", b"x" * 70_000, 2155, 0, 0, 0,
     "a", "", "[]", "23:59:59", "Ångström", "ß", "𝄞", "case", 0, 0, 0, 0, 0,
     0, "", 0, 0, 0, ""),
    (3,) + (None,) * 29,
    (4, b"abcd", b"NULL", b"\\N", b"", None, None, 1901, None, 1, 2**63, "bb", "ü,x", '"text"',
     "12:34:56", "naïve", None, "", "CASE", 1, 2, 3, 4, 2**63, -1, "z", -2, -3, -4, "Z"),
]
NAMES = ["id", "b4", "vb", "tb", "bl", "mb", "lb", "yr", "bit1", "bit5", "bit64", "en", "st", "j",
         "tm", "lat1", "u3", "u4", "ubin", "ti", "si", "mi", "ii", "bi", "order", "desc", "key",
         "group", "rank", "Mixed Case"]
CORPUS_YAML = """tables:
  - source: {schema}.corpus
    target: raw_data.corpus
    mode: full_refresh
"""


def _seed(source_url: str, schema: str) -> None:
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:
        conn.execute(sa.text(CORPUS_DDL.format(s=schema)))
        cols = ", ".join(f"`{n}`" for n in NAMES)
        params = ", ".join(f":p{i}" for i in range(len(NAMES)))
        for row in ROWS:
            values = {f"p{i}": v for i, v in enumerate(row)}
            conn.execute(sa.text(f"INSERT INTO {schema}.corpus ({cols}) VALUES ({params})"), values)
        for i, (row_id, srid) in enumerate(zip((1, 2, 4), SRIDS)):
            sets = ", ".join(f"{c} = ST_GeomFromText(:{c}, {srid})" for c in GEOMS)
            conn.execute(sa.text(f"UPDATE {schema}.corpus SET {sets} WHERE id = {row_id}"),
                         {c: wkts[i] for c, wkts in GEOMS.items()})
    engine.dispose()


def _ewkb(wkb: bytes | None, srid: int | None, postgis: bool = False) -> bytes | None:
    """MySQL's (SRID, WKB) as EWKB: the SRID flag in the type and the SRID after it. PostGIS
    writes no SRID when it is 0."""
    if wkb is None:
        return None
    if postgis and not srid:
        return wkb
    kind = int.from_bytes(wkb[1:5], "little") | 0x20000000
    return wkb[:1] + kind.to_bytes(4, "little") + srid.to_bytes(4, "little") + wkb[5:]


def _source(source_url: str, schema: str, postgis: bool = False) -> list[tuple]:
    """What MariaDB returns, each column as the warehouse should hold it."""
    engine = sa.create_engine(source_url)
    exprs = []
    for n in NAMES:
        if n.startswith("bit"):
            exprs.append(f"`{n}` + 0")
        elif n in GEOMS:
            exprs.append(f"ST_AsBinary(`{n}`), ST_SRID(`{n}`)")
        elif n in ("en", "st", "j", "tm"):
            exprs.append(f"CAST(`{n}` AS CHAR)")
        else:
            exprs.append(f"`{n}`")
    with engine.connect() as conn:
        raw = conn.execute(sa.text(f"SELECT {', '.join(exprs)} FROM {schema}.corpus ORDER BY id"))
        rows = []
        for r in raw:
            r, out = list(r), []
            for n in NAMES:
                if n in GEOMS:
                    out.append(_ewkb(r.pop(0), r.pop(0), postgis))
                else:
                    v = r.pop(0)
                    out.append(bytes(v) if isinstance(v, bytes | bytearray) else v)
            rows.append(tuple(out))
    engine.dispose()
    return rows


def _normal(v):
    """A warehouse value in the source's Python type (bytea arrives as memoryview, BIT(64) and
    BIGINT UNSIGNED as integral Decimal, TIME as time)."""
    if isinstance(v, memoryview | bytearray):
        return bytes(v)
    if isinstance(v, decimal.Decimal) and v == v.to_integral_value():
        return int(v)
    return v


def _warehouse(env: Env, postgis: bool) -> list[tuple]:
    wh = env.resource("warehouse")
    cols = ", ".join(f'ST_AsEWKB("{n}")' if postgis and n in GEOMS else f'"{n}"' for n in NAMES)
    return [tuple(_normal(v) for v in r)
            for r in wh.query(f"SELECT {cols} FROM raw_data.corpus ORDER BY id")]


def _compare(got: list[tuple], expected: list[tuple]) -> None:
    assert len(got) == len(expected) == len(ROWS)
    diffs = []
    for g, e in zip(got, expected):
        for name, a, b in zip(NAMES, g, e):
            if name == "tm" and a is not None:  # TIME: the warehouse's time against MariaDB's text
                a = str(a)
            if name == "j" and a is not None:  # JSON: the text exactly as MariaDB wrote it
                assert json.loads(a) == json.loads(b)
            if a != b:
                diffs.append((g[0], name, repr(a)[:80], repr(b)[:80]))
    assert diffs == []


def _has_postgis(url: str) -> bool:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).first() is not None
    engine.dispose()
    return found


@pytest.mark.parametrize("postgis", [False, True], ids=["bytea", "postgis"])
def test_corpus_into_postgres_is_exact(services_env, postgis):
    env = services_env
    url = os.environ["WAREHOUSE_DB_URL"]
    if postgis:
        if not _has_postgis(url):
            why = "PostGIS is not installed on this PostgreSQL (.ci/postgis-setup installs it)"
            if os.environ.get("CI") == "true":
                pytest.fail(why)  # CI runs every case, never skips one
            pytest.skip(why)
        with sa.create_engine(url).begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION postgis"))
    _seed(os.environ["SOURCE_DB_URL"], env.source_schema)
    result = env.replicate(env.config(CORPUS_YAML))
    assert result.success, failure_text(result)
    _compare(_warehouse(env, postgis), _source(os.environ["SOURCE_DB_URL"], env.source_schema, postgis))
    types = dict(env.resource("warehouse").query(
        "SELECT column_name, COALESCE(NULLIF(udt_name, ''), data_type) FROM "
        "information_schema.columns WHERE table_schema = 'raw_data' AND table_name = 'corpus'"))
    assert types["bl"] == "bytea" and types["yr"] == "int2" and types["bit64"] == "numeric"
    assert types["pt"] == ("geometry" if postgis else "bytea")
    assert types["Mixed Case"] == "varchar" and types["order"] == "int4"


def test_corpus_into_duckdb_is_exact(mysql_db, tmp_path, monkeypatch):
    schema, source_url = mysql_db
    monkeypatch.setenv("SOURCE_DB_URL", source_url)
    monkeypatch.setenv("STAGING_URL", str(tmp_path / "staging"))
    monkeypatch.setenv("WAREHOUSE_DB_URL", f"duckdb:///{tmp_path / 'w.duckdb'}")
    monkeypatch.setenv("RETRY_MAX", "0")
    env = Env(Settings.from_env(), schema, tmp_path)
    _seed(source_url, schema)
    result = env.replicate(env.config(CORPUS_YAML))
    assert result.success, failure_text(result)
    _compare(_warehouse(env, False), _source(source_url, schema))


def test_corpus_redshift_statements_and_limits(services_env):
    """The staged corpus as Redshift would load it: its DDL, and the size checks before COPY."""
    env = services_env
    _seed(os.environ["SOURCE_DB_URL"], env.source_schema)
    assert env.replicate(env.config(CORPUS_YAML)).success
    store = env.resource("staging")
    key = next(o.key for o in store.list(f"staging/{env.source_schema}/corpus")
               if o.key.endswith(".manifest.json"))
    manifest = Manifest.from_json(store.read_bytes(key).decode())
    d = RedshiftDialect("arn:aws:iam::1:role/copy")
    ddl = d.create_table_sql("raw_data", "corpus", manifest.columns, ("id",))
    for fragment in ('"b4" VARBYTE(4)', '"vb" VARBYTE(300)', '"tb" VARBYTE(255)',
                     '"bl" VARBYTE(65535)', '"mb" VARBYTE(16777215)', '"lb" VARBYTE(16777216)',
                     '"yr" SMALLINT', '"bit1" BIGINT', '"bit64" NUMERIC(20,0)', '"g" GEOMETRY',
                     '"pt" GEOMETRY', '"en" VARCHAR(', '"st" VARCHAR(', '"bi" NUMERIC(20,0)',
                     '"ii" BIGINT', '"order" INTEGER', '"Mixed Case" VARCHAR(40)'):
        assert fragment in ddl
    data = next(o.key for o in store.list(f"staging/{env.source_schema}/corpus")
                if o.key.endswith(".csv.gz"))
    load = TableLoad("raw_data", "corpus", "replace", ("id",),
                     (StagedFile(data, store.uri(data), manifest),))
    d.check_staged(load, store)  # 1 MB blob, 70,000-byte LONGBLOB: within Redshift's limits
    small = tuple(Column(c.name, "BYTES" if c.name == "lb" else c.type) for c in manifest.columns)
    d.MAX_VARBYTE_BYTES = 65_536  # as if the LONGBLOB were over 16 MB
    with pytest.raises(DataError, match=r"corpus\.mb: a value of 1,048,576 bytes \(row id=1\)"):
        d.check_staged(TableLoad("raw_data", "corpus", "replace", ("id",),
                                 (StagedFile(data, store.uri(data),
                                             Manifest(manifest.source, small, 4, 1)),)), store)


def test_keyless_view_with_odd_names_and_excluded_blob(services_env):
    env = services_env
    s = env.source_schema
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {s}.orders (id INT PRIMARY KEY, `desc` VARCHAR(20), "
                             "`Group Name` VARCHAR(20), picture LONGBLOB)"))
        conn.execute(sa.text(f"INSERT INTO {s}.orders VALUES (1, 'a', 'G1', x'00'), "
                             "(2, 'a', 'G1', NULL), (3, NULL, 'G 2', x'ff')"))
        conn.execute(sa.text(f"CREATE VIEW {s}.order_view AS SELECT `desc`, `Group Name`, picture, "
                             f"COUNT(*) AS `rank` FROM {s}.orders GROUP BY `desc`, `Group Name`, "
                             "picture"))
    yaml_text = (f"tables:\n  - source: {s}.order_view\n    target: raw_data.order_view\n"
                 "    mode: full_refresh\n    exclude_columns: [picture]\n")
    result = env.replicate(env.config(yaml_text))
    assert result.success, failure_text(result)
    got = env.resource("warehouse").query(
        'SELECT * FROM raw_data.order_view ORDER BY "desc" NULLS FIRST, "Group Name", "rank"')
    assert [tuple(r) for r in got] == [(None, "G 2", 1), ("a", "G1", 1), ("a", "G1", 1)]
    cols = [r[0] for r in env.resource("warehouse").query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw_data' "
        "AND table_name = 'order_view' ORDER BY ordinal_position")]
    assert cols == ["desc", "Group Name", "rank"]


def test_time_outside_a_day_fails_naming_the_row(services_env):
    """MySQL's TIME runs -838:59:59..838:59:59; the warehouse's is a time of day. A value outside
    fails naming table, column, value and row, with the cast to use, and nothing is loaded."""
    env = services_env
    s = env.source_schema
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {s}.spans (id INT PRIMARY KEY, took TIME)"))
        conn.execute(sa.text(f"INSERT INTO {s}.spans VALUES (1, '01:02:03'), (7, '838:59:59')"))
    yaml_text = (f"tables:\n  - source: {s}.spans\n    target: raw_data.spans\n"
                 "    mode: full_refresh\n    primary_key: [id]\n")
    result = env.replicate(env.config(yaml_text), raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"{s}.spans.took" in text and "838:59:59" in text and "id=7" in text, text
    assert "TIME_TO_SEC" in text, text
    assert not env.resource("warehouse").query(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'raw_data' "
        "AND table_name = 'spans'")
