"""Alerts reach someone: the backup alert exists only with backups, and Alertmanager's config,
rendered from `monitoring.alertReceiver` with its credentials a Pulumi secret, routes a firing
alert to that receiver, as `amtool config routes test` (Alertmanager's own routing code) reads it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.load import ConfigError
from tests.support.helpers import PROJECT, evaluate_config, stack_config, unavailable
from tools.render.evaluate import Evaluation
from tools.render.write import reveal, write_all

ALERTS = PROJECT / "charts" / "monitoring" / "alerts.yaml"
SECRET_URL = "https://hooks.example.org/services/T000/B000/XXXXsecretXXXX"
SECRET_PASSWORD = "smtp-s3cr3t-canary"
RECEIVERS: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    "webhook": ({"webhook": {}}, {"alertWebhookUrl": SECRET_URL}, SECRET_URL),
    "email": ({"email": {"to": "ops@example.org", "from": "alerts@example.org", "smarthost": "smtp.example.org:587",
                         "username": "alerts"}}, {"alertSmtpPassword": SECRET_PASSWORD}, SECRET_PASSWORD),
    "slack": ({"slack": {"channel": "#ops"}}, {"alertSlackApiUrl": SECRET_URL}, SECRET_URL),
}


def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        unavailable("amtool not installed (Debian package `prometheus-alertmanager`)")
    return path


def alerts_of(ev: Evaluation) -> list[str]:
    spec = ev.by_name("monitoring-alerts").inputs["spec"]
    return [r["alert"] for g in spec["groups"] for r in g["rules"] if "alert" in r]


def with_backups(raw: dict[str, Any]) -> dict[str, Any]:
    raw["backup"] = {"enabled": True, "host": "vpn-hub"}
    return raw


def test_the_backup_alert_exists_only_when_backups_are_on() -> None:
    off = evaluate_config(stack_config("dev"))
    assert "DatastoreBackupMissing" not in alerts_of(off)
    on = evaluate_config(with_backups(stack_config("dev")), command_stdout={
        "datastore-backup-schedule": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43 + "\n"})
    assert "DatastoreBackupMissing" in alerts_of(on)
    assert on.by_name("monitoring-alerts").inputs["spec"] == yaml.safe_load(ALERTS.read_text())  # the promtool-tested file
    assert set(alerts_of(on)) - set(alerts_of(off)) == {"DatastoreBackupMissing"}


def receiver_plan(kind: str) -> tuple[Evaluation, str]:
    section, secrets, value = RECEIVERS[kind]
    raw = stack_config("dev")
    raw["monitoring"]["alertReceiver"] = section
    return evaluate_config(raw, {"sshPrivateKey": "test-key", **secrets}), value


def rendered_config(ev: Evaluation, tmp_path: Path) -> Path:
    secret = ev.by_name("monitoring-alertmanager-config")
    assert secret.inputs["kind"] == "Secret"
    path = tmp_path / "alertmanager.yaml"
    path.write_text(reveal(secret.inputs["stringData"])["alertmanager.yaml"])
    return path


def route(tool: str, config: Path, *labels: str) -> str:
    result = subprocess.run([tool, "config", "routes", "test", f"--config.file={config}", *labels],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("kind", list(RECEIVERS))
def test_alertmanager_routes_a_firing_alert_to_the_configured_receiver(kind: str, tmp_path: Path) -> None:
    tool = amtool()
    ev, value = receiver_plan(kind)
    config = rendered_config(ev, tmp_path)
    check = subprocess.run([tool, "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert route(tool, config, "alertname=NodeNotReady", "severity=critical") == "hybrid-ai"
    assert route(tool, config, "alertname=GpuMemoryNearlyFull", "severity=warning", "namespace=models") == "hybrid-ai"
    assert route(tool, config, "alertname=Watchdog", "severity=none") == "null"  # always firing, by design
    received = yaml.safe_load(config.read_text())["receivers"]
    mine = next(r for r in received if r["name"] == "hybrid-ai")
    assert value in yaml.safe_dump(mine)
    values = reveal(ev.by_name("monitoring-stack").inputs["values"])["alertmanager"]["alertmanagerSpec"]
    assert values["useExistingSecret"] is True and values["configSecret"] == "hybrid-ai-alertmanager"
    for r in ev.resources:  # the credential is in the Secret only, and that as a Pulumi secret
        if r.name != "monitoring-alertmanager-config":
            assert value not in str(reveal(r.inputs)), r.name
    write_all(ev, tmp_path / "render")
    for path in (p for p in (tmp_path / "render").rglob("*") if p.is_file()):
        assert value not in path.read_text(errors="replace"), path
    plan = json.loads((tmp_path / "render" / "plan.json").read_text())
    assert "[secret]" in json.dumps(next(r for r in plan["resources"] if r["name"] == "monitoring-alertmanager-config")["inputs"]["stringData"])


def test_without_a_receiver_the_charts_own_config_stays() -> None:
    ev = evaluate_config(stack_config("dev"))
    assert not [r for r in ev.resources if r.name == "monitoring-alertmanager-config"]
    spec = reveal(ev.by_name("monitoring-stack").inputs["values"])["alertmanager"]["alertmanagerSpec"]
    assert "configSecret" not in spec and "useExistingSecret" not in spec


@pytest.mark.parametrize(("receiver", "secrets", "message"), [
    ({"webhook": {}, "slack": {"channel": "#ops"}}, {}, "hybrid-ai:monitoring.alertReceiver: set exactly one of"),
    ({}, {}, "hybrid-ai:monitoring.alertReceiver: set exactly one of"),
    ({"webhook": {}}, {}, "hybrid-ai:alertWebhookUrl: missing (needed by monitoring.alertReceiver.webhook.urlConfig)"),
    ({"email": {"to": "not-an-address", "from": "a@example.org", "smarthost": "smtp.example.org:587"}}, {}, "hybrid-ai:monitoring.alertReceiver.email.to"),
    ({"email": {"to": "o@example.org", "from": "a@example.org", "smarthost": "smtp.example.org"}}, {}, "hybrid-ai:monitoring.alertReceiver.email.smarthost"),
    ({"slack": {"channel": "ops\nx"}}, {}, "hybrid-ai:monitoring.alertReceiver.slack.channel"),
])
def test_a_bad_receiver_is_one_line_naming_the_key(receiver: dict[str, Any], secrets: dict[str, str], message: str) -> None:
    raw = stack_config("dev")
    raw["monitoring"]["alertReceiver"] = receiver
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, {"sshPrivateKey": "test-key", **secrets})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(message), err.value.problems


@pytest.mark.parametrize(("enabled", "receiver", "message"), [
    (False, {"webhook": {}}, "hybrid-ai:monitoring.alertReceiver: only used with `monitoring.enabled: true`"),
    (True, {"email": {"to": "o@example.org", "from": "a@example.org", "smarthost": "smtp.example.org:587", "passwordConfig": "smtp"}},
     "hybrid-ai:monitoring.alertReceiver.email.passwordConfig: only used with `username`"),
])
def test_a_receiver_setting_that_would_be_ignored_is_refused(enabled: bool, receiver: dict[str, Any], message: str) -> None:
    raw = stack_config("dev")
    raw["monitoring"] = {"enabled": enabled, "alertReceiver": receiver}
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, {"sshPrivateKey": "test-key", "alertWebhookUrl": SECRET_URL, "smtp": "x"})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(message), err.value.problems
