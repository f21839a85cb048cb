"""One factory turns each `sheets:` entry into the warehouse table <schema>/<table> loaded from a
tab, and each `exports:` entry into sheets/<spreadsheet id>/<tab> written from the warehouse."""
import gzip
import hashlib
import re
import time

import dagster as dg
import sqlalchemy as sa

from warehouse_assets.config import ReplicationConfig
from warehouse_assets.landing.files import portable_type
from warehouse_assets.lib.io_managers import manifest_key
from warehouse_assets.lib.redaction import scrubbed_errors
from warehouse_assets.lib.staged import Column, Manifest, RowEncoder, StagedFile
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse import TableLoad, Warehouse, qualified
from warehouse_assets.operations.pools import writer_policies
from warehouse_assets.sheets.client import SheetsError
from warehouse_assets.sheets.config import ExportSpec, SheetSpec
from warehouse_assets.sheets.read import SheetDataError, convert_rows
from warehouse_assets.sheets.resource import GoogleSheets
from warehouse_assets.sheets.write import SheetLimitError, write_tab
from warehouse_assets.summaries.assets import REBUILD_WHEN_INPUTS_CHANGE

GROUP = "sheets"
FETCH_ROWS = 5_000


def sheet_key(spec: SheetSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.target_schema, spec.target_table])


def export_key(spec: ExportSpec) -> dg.AssetKey:
    return dg.AssetKey(["sheets", spec.spreadsheet_id, spec.tab])


def _fail(exc: Exception) -> dg.Failure:
    """A bad cell, a sheet limit or a refused request: the same run fails the same way."""
    return dg.Failure(description=str(exc), allow_retries=False)


def stage_rows(store: StagingStore, spec: SheetSpec, rows: list[tuple]) -> StagedFile:
    """The tab's rows as a staged file (the format every warehouse load reads), manifest last."""
    columns = tuple(Column(c.name, portable_type(c.type)) for c in spec.columns)
    encoder = RowEncoder(spec.target, columns)
    key = f"staging/sheets/{spec.target_schema}/{spec.target_table}/full.csv.gz"
    with store.open_write(key) as fh:
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6, mtime=0) as gz:
            for start in range(0, len(rows), FETCH_ROWS):
                gz.write(encoder.encode(rows[start:start + FETCH_ROWS]).encode())
        size = fh.tell()
    manifest = Manifest(source=f"{spec.url} tab {spec.tab}", columns=columns, rows=len(rows),
                        bytes=size)
    store.write_bytes(manifest_key(key), manifest.to_json().encode())
    return StagedFile(key=key, uri=store.uri(key), manifest=manifest)


def build_sheet_asset(spec: SheetSpec) -> dg.AssetsDefinition:
    """<schema>/<table>: the tab's rows, checked by declared type, replacing the table atomically."""

    @dg.asset(
        key=sheet_key(spec),
        description=(spec.description or f"Warehouse table {spec.target} loaded from the tab "
                     f"{spec.tab!r} of a Google Sheet, replaced atomically.").strip(),
        group_name=GROUP,
        kinds={"googlesheets", "redshift"},
        io_manager_key="warehouse_io_manager",
        metadata={"spreadsheet": dg.MetadataValue.url(spec.url), "tab": spec.tab,
                  "columns": ", ".join(f"{c.name} {c.type}" for c in spec.columns)},
        **writer_policies(spec.target),
    )
    def sheet(context: dg.AssetExecutionContext, google_sheets: GoogleSheets,
              staging: StagingStore) -> TableLoad:
        started = time.monotonic()
        with scrubbed_errors():
            try:
                conn = google_sheets.connect()
                values = conn.values(spec.spreadsheet_id, spec.tab)
                rows = convert_rows(spec, values)
            except SheetDataError as exc:
                raise _fail(exc) from None
            except SheetsError as exc:
                if exc.transient:
                    raise
                raise _fail(exc) from None
            staged = stage_rows(staging, spec, rows)
        context.add_output_metadata({
            "rows": len(rows),
            "columns": len(spec.columns),
            "sheet_url": dg.MetadataValue.url(spec.url),
            "api_calls": conn.stats.calls,
            "api_retries": conn.stats.retries,
            "read_s": round(time.monotonic() - started, 3),
        })
        return TableLoad(target_schema=spec.target_schema, target_table=spec.target_table,
                         mode="replace", primary_key=(), staged=(staged,))

    return sheet


def _select(spec: ExportSpec) -> str:
    if spec.table:
        return f"SELECT * FROM {qualified(*spec.table)}"
    return spec.sql or ""


def _op_name(spec: ExportSpec) -> str:
    digest = hashlib.sha256(f"{spec.spreadsheet_id}\0{spec.tab}".encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9_]+", "_", spec.tab).strip("_")[:40]
    return f"sheets_export_{readable}_{digest}" if readable else f"sheets_export_{digest}"


def build_export_asset(spec: ExportSpec) -> dg.AssetsDefinition:
    """sheets/<id>/<tab>: the query's result over the tab in one atomic batchUpdate, rebuilt
    after what it reads changes (the seed's order: summary, then sheet)."""
    select = _select(spec)

    @dg.multi_asset(
        name=_op_name(spec),
        outs={"tab": dg.AssetOut(
            key=export_key(spec),
            description=f"The tab {spec.tab!r} of a Google Sheet, overwritten atomically with "
                        f"{'the table ' + '.'.join(spec.table) if spec.table else 'a SELECT'}.",
            group_name=GROUP,
            kinds={"googlesheets", "sql"},
            automation_condition=REBUILD_WHEN_INPUTS_CHANGE if spec.deps else None,
            code_version=hashlib.sha256(select.encode()).hexdigest()[:12],
            metadata={"spreadsheet": dg.MetadataValue.url(spec.url), "tab": spec.tab,
                      "sql": dg.MetadataValue.md(f"```sql\n{select}\n```")},
            is_required=True,
        )},
        deps=[dg.AssetKey(list(d)) for d in spec.deps],
        pool=f"sheets/{spec.spreadsheet_id}",  # one writer per spreadsheet at a time
        retry_policy=writer_policies(spec.spreadsheet_id)["retry_policy"],
    )
    def export(google_sheets: GoogleSheets, warehouse: Warehouse) -> dg.MaterializeResult:
        with scrubbed_errors():
            try:
                conn = google_sheets.connect()
            except SheetsError as exc:
                raise _fail(exc) from None
            with warehouse.begin() as db:
                result = db.execution_options(stream_results=True).execute(sa.text(select))
                columns = list(result.keys())

                def rows():
                    while batch := result.fetchmany(FETCH_ROWS):
                        yield from (tuple(r) for r in batch)

                try:
                    written = write_tab(conn, spec.spreadsheet_id, spec.tab, columns, rows())
                except SheetLimitError as exc:
                    raise _fail(exc) from None
                except SheetsError as exc:
                    if exc.transient:
                        raise
                    raise _fail(exc) from None
        return dg.MaterializeResult(metadata={
            "rows": written.rows,
            "columns": written.columns,
            "cells_written": written.cells,
            "tab_url": dg.MetadataValue.url(f"{spec.url}#gid={written.sheet_id}"),
            "created_tab": written.created,
            "swapped_in_new_tab": written.swapped,
            "write_requests": written.requests,
            "api_calls": conn.stats.calls,
            "api_retries": conn.stats.retries,
            "duration_s": round(written.seconds, 3),
        })

    return export


def build_sheets_assets(config: ReplicationConfig) -> list[dg.AssetsDefinition]:
    return [*(build_sheet_asset(s) for s in config.sheets),
            *(build_export_asset(e) for e in config.exports)]
