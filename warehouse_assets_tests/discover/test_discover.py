"""A whole schema from one command: a realistic MariaDB schema (composite keys, foreign keys,
triggers, a view, ON UPDATE timestamps, a soft-delete flag) discovered and replicated end to end
into PostgreSQL through the S3 server, every table compared value by value with the source."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import sqlalchemy as sa
import yaml

from warehouse_assets.config import parse_config
from warehouse_assets.discover.schema import discover
from warehouse_assets.discover.write import merge
from warehouse_assets.lib.source.database import _engine
from warehouse_assets_tests.conftest import failure_text

SHOP = [
    """CREATE TABLE {s}.customers (
      id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE,
      name VARCHAR(50) NOT NULL, created_at DATETIME NOT NULL,
      updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
      is_deleted TINYINT(1) NOT NULL DEFAULT 0, KEY (updated_at))""",
    """CREATE TABLE {s}.products (
      sku CHAR(8) PRIMARY KEY, title VARCHAR(80) NOT NULL, price DECIMAL(10,2) NOT NULL,
      picture BLOB NULL, released YEAR NULL, flags SET('new', 'sale', 'bio') NOT NULL DEFAULT '',
      last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
      KEY (last_update))""",
    """CREATE TABLE {s}.orders (
      id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,
      status ENUM('new', 'paid', 'shipped') NOT NULL, notes TEXT NULL,
      modified_at DATETIME(6) NOT NULL, KEY (modified_at),
      FOREIGN KEY (customer_id) REFERENCES {s}.customers (id))""",
    """CREATE TABLE {s}.order_items (
      order_id BIGINT UNSIGNED NOT NULL, line_no SMALLINT UNSIGNED NOT NULL, sku CHAR(8) NOT NULL,
      qty SMALLINT UNSIGNED NOT NULL, updated DATETIME NOT NULL, KEY (updated),
      PRIMARY KEY (order_id, line_no),
      FOREIGN KEY (order_id) REFERENCES {s}.orders (id),
      FOREIGN KEY (sku) REFERENCES {s}.products (sku))""",
    """CREATE TABLE {s}.product_tags (
      sku CHAR(8) NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (sku, tag),
      FOREIGN KEY (sku) REFERENCES {s}.products (sku))""",
    # Keyless, written by a trigger.
    """CREATE TABLE {s}.order_audit (order_id BIGINT UNSIGNED, old_status VARCHAR(10),
      new_status VARCHAR(10), at DATETIME(6))""",
    """CREATE TRIGGER {s}.orders_audit AFTER UPDATE ON {s}.orders FOR EACH ROW
      INSERT INTO {s}.order_audit VALUES (NEW.id, OLD.status, NEW.status, NEW.modified_at)""",
    """CREATE VIEW {s}.customer_totals AS
      SELECT o.customer_id, COUNT(DISTINCT o.id) AS orders, SUM(i.qty) AS items
      FROM {s}.orders o JOIN {s}.order_items i ON i.order_id = o.id GROUP BY o.customer_id""",
]


def _fill(conn, s: str) -> None:
    day = dt.datetime(2026, 11, 1)
    for i in range(1, 31):
        conn.execute(sa.text(f"INSERT INTO {s}.customers (email, name, created_at, updated_at, "
                             "is_deleted) VALUES (:e, :n, :c, :u, :d)"),
                     {"e": f"c{i}@example.com", "n": f"고객 {i} é", "c": day,
                      "u": day + dt.timedelta(hours=13 * (i - 1)), "d": int(i % 10 == 0)})
    for i in range(1, 11):
        conn.execute(sa.text(f"INSERT INTO {s}.products VALUES (:k, :t, :p, :b, :y, :f, :u)"),
                     {"k": f"SKU{i:05d}", "t": f"Product {i}", "p": f"{i * 3}.{i:02d}",
                      "b": bytes([i, 0, 255]) * i if i % 3 else None, "y": 1990 + i,
                      "f": ["", "new", "new,sale", "new,sale,bio"][i % 4],
                      "u": day + dt.timedelta(days=i - 1)})
        for tag in ("a", "b")[: i % 3]:
            conn.execute(sa.text(f"INSERT INTO {s}.product_tags VALUES (:k, :t)"),
                         {"k": f"SKU{i:05d}", "t": tag})
    for i in range(1, 41):
        at = day + dt.timedelta(hours=9 * (i - 1), microseconds=i)
        conn.execute(sa.text(f"INSERT INTO {s}.orders (customer_id, status, notes, modified_at) "
                             "VALUES (:c, 'new', :n, :m)"),
                     {"c": i % 29 + 1, "n": None if i % 4 else f"note\n{i}, \"quoted\"", "m": at})
        for line in range(1, i % 4 + 2):
            conn.execute(sa.text(f"INSERT INTO {s}.order_items VALUES (:o, :l, :k, :q, :u)"),
                         {"o": i, "l": line, "k": f"SKU{(i + line) % 10 + 1:05d}",
                          "q": line * 7, "u": at})
    # Updates fire the trigger and move cursors forward (ON UPDATE columns set explicitly).
    conn.execute(sa.text(f"UPDATE {s}.orders SET status = 'paid', "
                         "modified_at = modified_at + INTERVAL 1 DAY WHERE id % 3 = 0"))
    conn.execute(sa.text(f"UPDATE {s}.customers SET name = CONCAT(name, '!'), "
                         "updated_at = updated_at + INTERVAL 2 HOUR WHERE id % 7 = 0"))


def _rows(conn, table: str, columns: list[str]) -> list[tuple]:
    cols = ", ".join(f'"{c}"' if conn.dialect.name == "postgresql" else f"`{c}`" for c in columns)
    return sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                  for r in conn.execute(sa.text(f"SELECT {cols} FROM {table}")))


def test_discovered_schema_replicates_exactly(services_env):
    env = services_env
    s = env.source_schema
    source = _engine(os.environ["SOURCE_DB_URL"])
    with source.begin() as conn:
        for ddl in SHOP:
            conn.execute(sa.text(ddl.format(s=s)))
        _fill(conn, s)

    entries = {e.source.split(".")[1]: e for e in discover(source, [s])}
    assert sorted(entries) == ["customer_totals", "customers", "order_audit", "order_items",
                               "orders", "product_tags", "products"]
    f = {name: e.fields for name, e in entries.items()}
    assert f["customers"] | {} == {
        "source": f"{s}.customers", "target": f"{s}.customers", "mode": "incremental",
        "primary_key": ["id"], "cursor": "updated_at", "start_date": "2026-11-01",
        "soft_delete": "is_deleted"}
    assert (f["order_items"]["primary_key"], f["order_items"]["cursor"]) == (
        ["order_id", "line_no"], "updated")
    assert (f["orders"]["cursor"], f["products"]["cursor"]) == ("modified_at", "last_update")
    assert f["product_tags"] == {"source": f"{s}.product_tags", "target": f"{s}.product_tags",
                                 "mode": "full_refresh", "primary_key": ["sku", "tag"]}
    assert f["order_audit"]["mode"] == f["customer_totals"]["mode"] == "full_refresh"
    assert "primary_key" not in f["order_audit"] and "primary_key" not in f["customer_totals"]
    assert entries["customer_totals"].why[0] == "a view"

    text, added = merge("tables:\n", list(entries.values()))
    assert len(added) == 7 and merge(text, list(entries.values())) == (text, [])  # idempotent
    config = parse_config(yaml.safe_load(text))
    result = env.replicate(config, start="2026-11-01", end="2026-11-30")
    assert result.success, failure_text(result)

    wh = sa.create_engine(os.environ["WAREHOUSE_DB_URL"])
    with source.connect() as src, wh.connect() as dst:
        for name in entries:
            cols = [c["name"] for c in sa.inspect(source).get_columns(name, schema=s)]
            want = _rows(src, f"{s}.{name}", cols)
            if name == "customers":  # soft-deleted rows are left out of the warehouse
                want = [r for r in want if not r[cols.index("is_deleted")]]
            got = _rows(dst, f'"{s}"."{name}"', cols)
            assert got == want, name
            assert len(got) > 0, name
    wh.dispose()


def test_discover_command_writes_once_and_keeps_what_is_there(services_env, tmp_path):
    """The CLI merges into the file: existing entries and comments stay as written; a rerun adds
    nothing; the result loads."""
    env = services_env
    s = env.source_schema
    with _engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        for ddl in SHOP[:5]:
            conn.execute(sa.text(ddl.format(s=s)))
    path = tmp_path / "replication.yaml"
    mine = (f"# my tables\ntables:\n  - source: {s}.products   # hand-written\n"
            "    target: raw_data.products\n    mode: full_refresh\n    primary_key: [sku]\n"
            "landing: []\n")
    path.write_text(mine)
    cmd = [sys.executable, "-m", "warehouse_assets.discover", "--schema", s, "--config", str(path)]
    shown = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert path.read_text() == mine and f"- source: {s}.orders" in shown.stdout
    assert f"{s}.products" not in shown.stdout and "1 already in" in shown.stderr
    subprocess.run([*cmd, "--write"], check=True, capture_output=True)
    text = path.read_text()
    assert text.startswith(mine.split("landing:")[0]) and text.endswith("landing: []\n")
    config = parse_config(yaml.safe_load(text))
    assert [t.source for t in config.tables] == [
        f"{s}.products", f"{s}.customers", f"{s}.order_items", f"{s}.orders", f"{s}.product_tags"]
    again = subprocess.run([*cmd, "--write"], check=True, capture_output=True, text=True)
    assert path.read_text() == text and "0 entries added, 5 already there" in again.stderr


def test_many_entries_load_grouped_by_schema_without_touching_the_source(tmp_path):
    """`dagster definitions validate` with 60 entries over 3 schemas and an unreachable source:
    definitions load without connecting, one asset group per source schema, no job per table."""
    lines = ["tables:"]
    for i in range(60):
        lines += [f"  - source: s{i % 3}.t{i}", f"    target: w{i % 3}.t{i}",
                  "    mode: incremental", "    primary_key: [id]", "    cursor: updated_at",
                  '    start_date: "2024-01-01"']
    path = tmp_path / "replication.yaml"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "REPLICATION_YAML": str(path), "DAGSTER_HOME": str(tmp_path),
           "SOURCE_DB_URL": "mysql+pymysql://nobody@127.0.0.1:9/unreachable"}
    code = ("import warehouse_assets.definitions as d; r = d.defs.get_repository_def(); "
            "import collections; print(sorted(collections.Counter(a.group_name for a in "
            "r.asset_graph.asset_nodes).items()), len(r.get_all_jobs()), len(r.schedule_defs))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")[-2]
    assert "('replication_s0', 60)" in out, out  # mysql/, staging/ and warehouse asset of 20
    assert "('replication_s1', 60)" in out and "('replication_s2', 60)" in out, out
    # One job, Dagster's implicit asset job: a job per table, or for the reconcile checks, would
    # cost a pass over every asset at load. A schedule per table, and reconcile_daily.
    assert out.endswith(" 1 61"), out


def test_unreadable_column_is_left_out_with_the_reason(mysql_db, monkeypatch):
    """A column SQLAlchemy cannot type goes to exclude_columns, the comment naming the type as the
    server declares it. (MariaDB 10.11 has no such type left, so UUID is made unknown here.)"""
    from sqlalchemy.dialects.mysql import base as mysql_base

    monkeypatch.delitem(mysql_base.ischema_names, "uuid")
    schema, url = mysql_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE things (id INT PRIMARY KEY, tag UUID, updated DATE, "
                             "deleted BOOLEAN)"))
        conn.execute(sa.text("INSERT INTO things VALUES (1, UUID(), '2025-03-04', 0)"))
    (entry,) = discover(engine, [schema], target_schema="raw_data")
    today = dt.date.today().isoformat()
    assert entry.fields == {"source": f"{schema}.things", "target": "raw_data.things",
                            "mode": "incremental", "primary_key": ["id"], "cursor": "updated",
                            "start_date": today, "soft_delete": "deleted",
                            "exclude_columns": ["tag"]}
    assert f"start_date {today}: updated has no index to find its earliest value; set the first " \
           "day to backfill" in entry.why
    assert "left out tag: UUID cannot be replicated" in entry.why
    engine.dispose()
