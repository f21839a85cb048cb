"""Failure alerts: a failed run posts one Slack message (the seed's Slack callbacks).

The message names the assets, the partition, the error's first line and links to the run in the
UI. Configured by SLACK_WEBHOOK_URL (an incoming webhook) or SLACK_BOT_TOKEN + SLACK_CHANNEL;
with neither, the sensor skips and says why. Text is scrubbed of URL passwords and of the values
of secret-named environment variables before it leaves the process.
"""

import json
import re

import dagster as dg
from dagster_shared.error import SerializableErrorInfo
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from warehouse_assets.lib.redaction import scrub, scrubbed_errors
from warehouse_assets.operations.schedules import RANGE_END, RANGE_START
from warehouse_assets.settings import Operations

WRAPPERS = {"Failure", "RetryRequested", "RetryRequestedFromPolicy"}
MODULE_PATH = re.compile(r"^(?:[a-z_][\w]*\.)+(?=[A-Z]\w*: )")


class SlackAlerts(dg.ConfigurableResource):
    """Where alerts go: an incoming webhook, or a bot token posting to a channel."""

    webhook_url: str | None = Field(default=None, repr=False)  # secrets: never in a repr
    bot_token: str | None = Field(default=None, repr=False)
    channel: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or (self.bot_token and self.channel))

    @scrubbed_errors()  # slack_sdk's errors can quote the webhook URL
    def post(self, text: str, blocks: list[dict]) -> None:
        if self.webhook_url:
            response = WebhookClient(self.webhook_url).send(text=text, blocks=blocks)
            if response.status_code != 200:  # the URL is a secret: never put it in the error
                raise RuntimeError(
                    f"Slack webhook answered {response.status_code}: {response.body}")
        else:
            WebClient(token=self.bot_token).chat_postMessage(
                channel=self.channel, text=text, blocks=blocks
            )


def build_slack_alerts(ops: Operations | None = None) -> SlackAlerts:
    ops = ops or Operations.from_env()
    return SlackAlerts(
        webhook_url=ops.slack_webhook_url, bot_token=ops.slack_bot_token, channel=ops.slack_channel
    )


def first_line(error: SerializableErrorInfo | None) -> str:
    """The user error's first line, `Class: message` without the module path, under Dagster's
    wrappers (retries exceeded, error while handling output, Failure)."""
    while error is not None and error.cause is not None and (
        error.cls_name in WRAPPERS or (error.cls_name or "").startswith("Dagster")
    ):
        error = error.cause
    line = (error.message if error else "").strip().splitlines()
    return MODULE_PATH.sub("", line[0]) if line else "no error message"


def failure_message(context: dg.RunFailureSensorContext, base_url: str) -> dict:
    """Slack `text` and `blocks` for a failed run."""
    run = context.dagster_run
    steps = context.get_step_failure_events()
    plan = context.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    by_step = {  # the assets each step of the run materializes
        step.key: [o.properties.asset_key for o in step.outputs
                   if o.properties and o.properties.asset_key]
        for step in plan.steps
    }
    failed_steps = [e.step_key for e in steps] or list(by_step)
    keys = {k.to_user_string() for step in failed_steps for k in by_step.get(step, [])}
    assets = ", ".join(sorted(keys)) or run.job_name
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags[RANGE_START]}...{tags[RANGE_END]}" if RANGE_START in tags else "none"
    )
    error = first_line(steps[0].step_failure_data.error) if steps else (
        context.failure_event.message or "run failed"
    ).strip().splitlines()[0]
    link = f"{base_url}/runs/{run.run_id}"
    text = scrub(
        f"Run failed: {assets}\npartition: {partition}\nerror: {error}\nrun: {link}"
    )
    fields = scrub(f"*Run failed:* `{assets}`\n*Partition:* {partition}\n*Error:* {error}")
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": fields}},
        {"type": "section",
         "text": {"type": "mrkdwn", "text": f"<{link}|Open run {run.run_id[:8]}>"}},
    ]
    return {"text": text, "blocks": blocks}


def build_alert_sensor(ops: Operations | None = None) -> dg.SensorDefinition:
    """Posts every failed run of this code location to Slack."""
    base_url = (ops or Operations.from_env()).webserver_base_url

    @dg.run_failure_sensor(
        name="slack_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a failed run's assets, partition, error and link to Slack.",
    )
    def slack_on_run_failure(context: dg.RunFailureSensorContext, slack_alerts: SlackAlerts):
        if not slack_alerts.configured:
            return dg.SkipReason("no SLACK_WEBHOOK_URL (or SLACK_BOT_TOKEN and SLACK_CHANNEL) set")
        slack_alerts.post(**failure_message(context, base_url))

    return slack_on_run_failure


def build_check_alert_sensor(check_keys: list[dg.AssetCheckKey],
                             ops: Operations | None = None) -> dg.SensorDefinition:
    """Posts a check that starts failing (freshness, matches_source) to Slack once; it posts
    again only after the check has passed in between."""
    base_url = (ops or Operations.from_env()).webserver_base_url

    @dg.sensor(
        name="slack_on_failed_check",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a newly failing asset check (freshness, matches_source) to Slack, once.",
    )
    def slack_on_failed_check(context: dg.SensorEvaluationContext, slack_alerts: SlackAlerts):
        was = set(json.loads(context.cursor)) if context.cursor else set()
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            check_keys)  # one query for every check's last evaluation, on any storage
        evaluations = {
            key: record.event.dagster_event.event_specific_data
            for key, record in latest.items()
            if record.event and record.event.dagster_event
            and record.event.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
        failing = {key.to_user_string(): e for key, e in evaluations.items() if not e.passed}
        new = sorted(set(failing) - was)
        context.update_cursor(json.dumps(sorted(failing)))
        if not new:
            return dg.SkipReason("no newly failing checks")
        if not slack_alerts.configured:
            return dg.SkipReason(f"{len(new)} failing check(s); no Slack configured")
        for name in new:
            e = failing[name]
            asset = e.asset_key.to_user_string()
            text = scrub(f":warning: Check {e.check_name} failed on {asset}: "
                         f"{e.description or 'see the asset page'}")
            link = f"{base_url}/assets/{asset}?view=checks"
            slack_alerts.post(text=text, blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open>"}]}])
        return dg.SkipReason(f"posted {len(new)} failing check(s)")

    return slack_on_failed_check
