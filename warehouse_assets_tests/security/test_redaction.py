"""Scrubbing, piece by piece: what counts as a secret, errors, log records, resource reprs."""

import io
import logging

import pytest
from dagster._utils.error import serializable_error_info_from_exc_info

from warehouse_assets.lib.redaction import ScrubbedError, scrub, scrub_log_records, scrubbed_errors
from warehouse_assets.lib.source import SourceDatabase
from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.operations.alerts import SlackAlerts

DB_PASSWORD = "p@ss-W0rd-db"  # '@' is written %40 inside a URL
DB_URL = "mysql+pymysql://etl:p%40ss-W0rd-db@db.internal:3306/prod"
WEBHOOK = "https://hooks.slack.com/services/T0001/B0002/xoxb-webhook-t0ken"


@pytest.fixture
def secret_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DB_URL", DB_URL)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-K7MDENG-bPxRfiCY")


def test_scrub_masks_every_form_a_secret_takes(secret_environ) -> None:
    text = (
        f"url {DB_URL}; other postgresql://u:anything@h/db; dsn password={DB_PASSWORD}; "
        f"raw p%40ss-W0rd-db; hook {WEBHOOK}; urllib3: Max retries exceeded with url: "
        "/services/T0001/B0002/xoxb-webhook-t0ken; aws wJalrXUtnFEMI-K7MDENG-bPxRfiCY; id etl"
    )
    assert scrub(text) == (
        "url mysql+pymysql://etl:***@db.internal:3306/prod; other postgresql://u:***@h/db; "
        "dsn password=***; raw ***; hook ***; urllib3: Max retries exceeded with url: ***; "
        "aws ***; id etl"
    )


def test_an_error_holding_a_secret_is_reraised_without_it(secret_environ) -> None:
    def connect() -> None:
        try:
            raise OSError(f"cannot reach {DB_URL}")
        except OSError as exc:
            raise RuntimeError("source unreachable") from exc

    with pytest.raises(ScrubbedError) as caught, scrubbed_errors():
        connect()
    stored = serializable_error_info_from_exc_info(
        (caught.type, caught.value, caught.tb)).to_string()  # what Dagster keeps
    assert "source unreachable" in stored and "etl:***@db.internal" in stored
    assert DB_PASSWORD not in stored and "p%40ss" not in stored

    clean = ValueError("no secret here")
    with pytest.raises(ValueError) as same, scrubbed_errors():
        raise clean
    assert same.value is clean  # errors without secrets keep their type for retry decisions


def test_log_records_are_scrubbed_whatever_logs_them(secret_environ) -> None:
    scrub_log_records()
    out = io.StringIO()
    logger = logging.getLogger("some.library")
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("Sending a request - url: %s", WEBHOOK)
        try:
            raise ConnectionError(f"lost {DB_URL}")
        except ConnectionError:
            logger.exception("load failed")
    finally:
        logger.removeHandler(handler)
    assert "Sending a request - url: ***" in out.getvalue()
    assert "ConnectionError: lost mysql+pymysql://etl:***@db.internal" in out.getvalue()
    assert "xoxb-webhook-t0ken" not in out.getvalue() and "p%40ss" not in out.getvalue()


def test_resource_reprs_hide_urls_and_webhooks() -> None:
    for resource in (SourceDatabase(url=DB_URL), Warehouse(url=DB_URL),
                     SlackAlerts(webhook_url=WEBHOOK, bot_token="xoxb-bot-t0ken-123")):
        shown = f"{resource!r} {resource!s}"
        assert "p%40ss" not in shown and "t0ken" not in shown, shown


def test_a_slack_error_quoting_the_webhook_is_scrubbed(secret_environ, monkeypatch) -> None:
    hook = WEBHOOK.removeprefix("https://")  # urllib: "unknown url type: '<the URL>'"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", hook)
    with pytest.raises(ScrubbedError) as caught:
        SlackAlerts(webhook_url=hook).post(text="run failed", blocks=[])
    assert str(caught.value) == "ValueError: unknown url type: '***'"
    stored = serializable_error_info_from_exc_info((caught.type, caught.value, caught.tb))
    assert "t0ken" not in stored.to_string()


def test_google_keys_and_tokens_are_masked(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import json

    key = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
           "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNb\n"
           "-----END PRIVATE KEY-----\n")
    info = {"type": "service_account", "private_key_id": "0123456789abcdef0123456789abcdef",
            "private_key": key, "client_email": "x@y.iam.gserviceaccount.com"}
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", json.dumps(info))
    text = (f"id {info['private_key_id']}; json {json.dumps(key)}; line "
            "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNb; "
            "header Authorization: Bearer ya29.a0AfH6SMBx-abc_DEF.123; body "
            '{"access_token": "ya29.c.b0Aaekm1K", "assertion": '
            '"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4QHkifQ.c2lnbmF0dXJlLXNpZw"}; pem ' + key)
    clean = scrub(text)
    for secret in (info["private_key_id"], "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
                   "VJTUt9Us8cKjMzEfYyjiWA4R4", "ya29.", "a0AfH6SMBx", "eyJpc3MiOiJ4QHkifQ"):
        assert secret not in clean
    assert clean.startswith("id ***; json ")
    assert "Authorization: Bearer ***" in clean

    # The same from a key file named by GOOGLE_APPLICATION_CREDENTIALS.
    monkeypatch.delenv("GOOGLE_SERVICE_ACCOUNT_JSON")
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    assert scrub(f"kid {info['private_key_id']}") == "kid ***"
