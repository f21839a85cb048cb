"""The Google service account's private key, its id, the signed token requests and the access
tokens never leave the process: not in logs (google-auth logs requests at DEBUG), event storage,
metadata, errors, reprs or files. The key arrives only as an EnvVar and is never written to disk.

Imports and exports run through a persistent instance with the multiprocess executor, succeed and
fail; then every byte the instance wrote and every log line is searched for the secrets.
"""

import io
import json
import logging
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_shared.serdes import serialize_value

from warehouse_assets.config import load_config
from warehouse_assets.resources import build_resources
from warehouse_assets.sheets.assets import build_sheets_assets
from warehouse_assets_tests.sheets.conftest import SID
from warehouse_assets_tests.sheets.fake_sheets import FakeSheets

REPLICATION = f"""
tables: []
sheets:
  - source: {SID}
    tab: Targets
    target: raw_data.targets
    columns: {{month: DATE, target: "NUMERIC(5,1)"}}
exports:
  - query: analytics/nps_summary
    spreadsheet: {SID}
    tab: NPS
"""


def sheets_job() -> dg.JobDefinition:
    """The sheets assets of the current environment (rebuilt in every step's process)."""
    defs = dg.Definitions(
        assets=[*build_sheets_assets(load_config()), dg.AssetSpec(["analytics", "nps_summary"])],
        jobs=[dg.define_asset_job("sheets", selection=dg.AssetSelection.groups("sheets"))],
        resources=build_resources())
    return defs.resolve_job_def("sheets")


@pytest.fixture
def fake() -> FakeSheets:
    server = FakeSheets().start()
    server.add_spreadsheet(SID)
    yield server
    server.stop()


def test_google_secrets_appear_nowhere(embedded_env, fake: FakeSheets, tmp_path: Path,
                                       capfd: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch):
    info = fake.service_account_info()
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", json.dumps(info))
    monkeypatch.setenv("GOOGLE_SHEETS_API_URL", fake.url)
    (tmp_path / "replication.yaml").write_text(REPLICATION)
    monkeypatch.setenv("REPLICATION_YAML", str(tmp_path / "replication.yaml"))
    fake.add_tab(SID, "Targets", [["month", "target"], [45017, 42.5], [45048, 43]])
    wh = build_resources()["warehouse"].process_config_and_initialize()
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA analytics"))
        conn.execute(sa.text("CREATE TABLE analytics.nps_summary AS SELECT 1 AS day, 2.5 AS nps"))
    before = {p for p in Path("/tmp").iterdir()} if Path("/tmp").exists() else set()

    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every library's debug output, google-auth's requests included
    places: dict[str, str] = {}
    (tmp_path / "instance").mkdir()
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
            job = dg.reconstructable(sheets_job)
            assert dg.execute_job(job, instance).success
            assert wh.query("SELECT COUNT(*) FROM raw_data.targets") == [(2,)]
            assert fake.values(SID, "NPS") == [["day", "nps"], [1, "2.5"]]
            # A spreadsheet that refuses us, and a token endpoint that fails: both runs fail.
            fake.forbidden.add(SID)
            assert not dg.execute_job(job, instance).success
            fake.forbidden.clear()
            fake.fail(400, {"error": "invalid_grant", "error_description": "Invalid JWT"},
                      times=None, match="/token")
            assert not dg.execute_job(job, instance).success

            runs = instance.get_runs()
            assert len(runs) == 3 and sum(r.is_failure for r in runs) == 2
            places["runs and run config"] = "\n".join(serialize_value(r) for r in runs)
            places["event log"] = "\n".join(
                serialize_value(e) for r in runs for e in instance.all_logs(r.run_id))
            failures = [e.message + serialize_value(e.dagster_event) for r in runs
                        for e in instance.all_logs(r.run_id)
                        if e.dagster_event and e.dagster_event.is_step_failure]
            assert any("PERMISSION_DENIED" in f for f in failures)
            assert any("cannot get an access token" in f for f in failures)
            places["failure messages"] = "\n".join(failures)
            reprs = []
            for name, r in build_resources().items():
                reprs.append(f"{r!r} {r!s}")
                if name == "google_sheets":
                    with r.process_config_and_initialize_cm() as resolved:
                        reprs.append(f"{resolved!r} {resolved!s}")
            places["resource reprs"] = "\n".join(reprs)
        files = [p for p in (tmp_path / "instance").rglob("*") if p.is_file()]
        assert any("compute_logs" in p.parts for p in files)
        places["instance files"] = "\n".join(
            p.read_bytes().decode("utf-8", "replace") for p in files)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    places["python logging"] = captured.getvalue()
    out, err = capfd.readouterr()
    places["stdout and stderr"] = out + err

    key_lines = [ln for ln in info["private_key"].splitlines() if not ln.startswith("-----")]
    assertions = [r.body["assertion"] for r in fake.calls("/token") if r.body]
    assert fake.tokens and assertions  # tokens were minted and used
    secrets = {"private_key_id": info["private_key_id"], **{
        f"private key line {i}": ln for i, ln in enumerate(key_lines)}, **{
        f"access token {i}": t for i, t in enumerate(sorted(fake.tokens))}, **{
        f"token request assertion {i}": a for i, a in enumerate(assertions)}}
    leaks = [f"{name} in {place}: ...{text[max(text.find(secret) - 150, 0):][:300]}..."
             for place, text in places.items()
             for name, secret in secrets.items() if secret in text]
    assert leaks == [], "\n\n".join(leaks)
    # No key file written anywhere we can see: the key is read from the variable in memory.
    after = {p for p in Path("/tmp").iterdir()} - before
    written = [p for p in [*after, *tmp_path.rglob("*")] if p.is_file()
               and key_lines[1] in p.read_bytes().decode("utf-8", "replace")]
    assert written == []
