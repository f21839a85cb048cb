"""A long backfill as bounded runs: one queued run per month (or week, or day) of a table.

    python -m warehouse_assets.operations.backfill --table raw_data.nps \
        --start 2023-04-20 --end 2024-12-31 --chunk month [--url http://127.0.0.1:3000]

Each chunk is one run of the table's two assets over its days (the single-run policy makes it one query
and one load), submitted through the webserver's GraphQL API to the instance's run queue. The
daemon starts them: one at a time per table (the table's pool), and at most the `warehouse/backfill`
tag limit in dagster.yaml across tables. Replaces `airflow dags backfill -s START -e END DAG`.
"""

import argparse
import datetime as dt
import uuid

from warehouse_assets.config import load_config
from warehouse_assets.operations.schedules import ASSET_JOB, RANGE_END, RANGE_START, table_assets

BACKFILL_TAG = "warehouse/backfill"
LOCATION = "warehouse_assets"


def _next_start(day: dt.date, chunk: str) -> dt.date:
    if chunk == "day":
        return day + dt.timedelta(days=1)
    if chunk == "week":  # weeks start on Monday
        return day + dt.timedelta(days=7 - day.weekday())
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def chunks(start: dt.date, end: dt.date, chunk: str) -> list[tuple[dt.date, dt.date]]:
    """[start, end] cut at calendar boundaries: (first day, last day) of each piece."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    out = []
    while start <= end:
        nxt = _next_start(start, chunk)
        out.append((start, min(nxt - dt.timedelta(days=1), end)))
        start = nxt
    return out


def submit(client, table: str, start: dt.date, end: dt.date, chunk: str) -> list[str]:
    """Queue one run per chunk; returns the run ids in date order."""
    spec = next((t for t in load_config().tables if t.target == table), None)
    if spec is None or spec.mode != "incremental":
        raise ValueError(f"--table {table} is not an incremental table of the replication config")
    backfill_id = f"{table}:{start}..{end}:{uuid.uuid4().hex[:6]}"
    return [
        client.submit_job_execution(
            ASSET_JOB,
            repository_location_name=LOCATION,
            asset_selection=table_assets(spec),
            tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat(),
                  BACKFILL_TAG: backfill_id},
        )
        for first, last in chunks(start, end, chunk)
    ]


def main(argv: list[str] | None = None) -> list[str]:
    from urllib.parse import urlsplit

    from dagster_graphql import DagsterGraphQLClient

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", required=True, help="warehouse table, e.g. raw_data.nps")
    p.add_argument("--start", required=True, type=dt.date.fromisoformat)
    p.add_argument("--end", required=True, type=dt.date.fromisoformat)
    p.add_argument("--chunk", choices=("day", "week", "month"), default="month")
    p.add_argument("--url", default="http://127.0.0.1:3000", help="the Dagster webserver")
    args = p.parse_args(argv)
    url = urlsplit(args.url)
    client = DagsterGraphQLClient(
        url.hostname, port_number=url.port, use_https=url.scheme == "https"
    )
    run_ids = submit(client, args.table, args.start, args.end, args.chunk)
    for (first, last), run_id in zip(chunks(args.start, args.end, args.chunk), run_ids):
        print(f"queued {run_id}  {args.table}  {first} .. {last}")
    return run_ids


if __name__ == "__main__":
    main()
