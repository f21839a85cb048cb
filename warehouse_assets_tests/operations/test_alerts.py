"""Failure alerts against a local HTTP receiver standing in for Slack's incoming webhook."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from warehouse_assets import demo
from warehouse_assets.operations.alerts import (
    SlackAlerts,
    build_alert_sensor,
    build_check_alert_sensor,
    build_slack_alerts,
    scrub,
)
from warehouse_assets_tests.operations import NPS_YAML

SECRET_PATH = "/services/T0001/B0002/very-secret-token"


@pytest.fixture
def slack() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """An incoming-webhook stand-in on loopback: (its URL, the (path, JSON body) posted to it)."""
    received: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}{SECRET_PATH}", received
    server.shutdown()
    server.server_close()


def _tick(sensor, instance, cursor, alerts: SlackAlerts):
    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                 resources={"slack_alerts": alerts}) as context:
        return sensor.evaluate_tick(context)


def test_a_failed_run_posts_one_message_and_a_success_none(embedded_env, slack, monkeypatch):
    url, received = slack
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    monkeypatch.setenv("DAGSTER_WEBSERVER_BASE_URL", "https://dagster.example.com/")
    monkeypatch.setenv("RETRY_MAX", "0")
    env = embedded_env
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    first, _ = demo.demo_days()
    config = env.config(NPS_YAML)
    sensor, alerts = build_alert_sensor(), build_slack_alerts()
    with dg.instance_for_test() as instance:
        cursor = _tick(sensor, instance, None, alerts).cursor  # the first tick starts from now
        day = "2026-11-01"
        # A cursor column the source does not have: the run fails (a configuration error).
        broken = env.config(NPS_YAML.replace("cursor: modified_at", "cursor: updated_at"))
        failed = env.replicate(broken, start=day, instance=instance, raise_on_error=False)
        assert not failed.success
        ok = env.replicate(config, start=first.isoformat(), instance=instance)
        assert ok.success
        result = _tick(sensor, instance, cursor, alerts)
        again = _tick(sensor, instance, result.cursor, alerts)  # nothing new: nothing posted
        assert again.run_requests == []

    assert len(received) == 1
    ((path, message),) = received
    assert path == SECRET_PATH
    assert message["text"] == (
        "Run failed: staging/prod/nps\n"
        f"partition: {day}...{day}\n"
        "error: SourceError: source table prod.nps has no column 'updated_at'\n"
        f"run: https://dagster.example.com/runs/{failed.run_id}"
    )
    assert [b["type"] for b in message["blocks"]] == ["section", "section"]
    assert f"/runs/{failed.run_id}|Open run" in message["blocks"][1]["text"]["text"]
    assert "very-secret-token" not in json.dumps(message)


def test_nothing_configured_means_no_alert_and_no_error(embedded_env, monkeypatch):
    for var in ("SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL"):
        monkeypatch.delenv(var, raising=False)
    alerts = build_slack_alerts()
    assert not alerts.configured
    sensor = build_alert_sensor()

    @dg.asset
    def broken() -> None:
        raise ValueError("boom")

    with dg.instance_for_test() as instance:
        cursor = _tick(sensor, instance, None, alerts).cursor
        assert not dg.materialize([broken], instance=instance, raise_on_error=False).success
        result = _tick(sensor, instance, cursor, alerts)
    assert "SLACK_WEBHOOK_URL" in (result.skip_message or "")


def test_scrub_hides_url_passwords_and_secret_values(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "hunter2-hunter2")
    text = scrub("connect mysql+pymysql://etl:pa55word@db:3306/prod failed; pw hunter2-hunter2")
    assert text == "connect mysql+pymysql://etl:***@db:3306/prod failed; pw ***"


def test_a_failing_check_posts_once_until_it_passes_again(slack):
    url, received = slack
    alerts = SlackAlerts(webhook_url=url)
    sensor = build_check_alert_sensor([dg.AssetCheckKey(dg.AssetKey('t'), 'matches_source')])
    verdicts = iter([False, False, True, False])

    @dg.asset(check_specs=[dg.AssetCheckSpec("matches_source", asset="t")])
    def t():
        yield dg.Output(1)
        yield dg.AssetCheckResult(passed=next(verdicts), description="3 rows missing")

    cursor, posted = None, []
    with dg.instance_for_test() as instance:
        for _ in range(4):
            assert dg.materialize([t], instance=instance).success
            result = _tick(sensor, instance, cursor, alerts)
            cursor = result.cursor
            posted.append(len(received))
    assert posted == [1, 1, 1, 2]  # failed, still failing, passed, failed again
    _, body = received[0]
    assert "matches_source failed on t: 3 rows missing" in body["text"]
