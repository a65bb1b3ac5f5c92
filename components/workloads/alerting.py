"""Alertmanager's configuration when the stack names a receiver, and the alert rules the stack
runs. The configuration goes into a Secret of ours (its receiver's credentials are a Pulumi
secret) that kube-prometheus-stack's Alertmanager reads instead of the chart's own
(`alertmanagerSpec.useExistingSecret` and `configSecret`, 88.5.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ALERTS = Path(__file__).resolve().parents[2] / "charts" / "monitoring" / "alerts.yaml"
CONFIG_SECRET = "hybrid-ai-alertmanager"
RECEIVER = "hybrid-ai"
BACKUP_ALERT = "DatastoreBackupMissing"
# The backup alert's matcher of the reference stack's control plane, for the stack's own.
BACKUP_NODES_MATCHER = 'node=~"receipt"'
# Alerts kube-prometheus-stack's own rules keep firing on purpose (a heartbeat, an inhibitor):
# they go nowhere.
SILENT = ("Watchdog", "InfoInhibitor")


def alert_rules(backups: bool, backup_nodes: Sequence[str] = ("receipt",)) -> dict[str, Any]:
    """The PrometheusRule spec: every alert of alerts.yaml, the backup's only with backups on
    (without them it would always fire), counting only the series of `backup_nodes`."""
    spec: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    nodes = "|".join(re.escape(n) for n in backup_nodes) or "$^"
    for group in spec["groups"]:
        group["rules"] = [r for r in group["rules"] if backups or r.get("alert") != BACKUP_ALERT]
        for rule in group["rules"]:
            if rule.get("alert") == BACKUP_ALERT:
                assert BACKUP_NODES_MATCHER in rule["expr"], "alerts.yaml: the backup alert lost its node matcher"
                rule["expr"] = rule["expr"].replace(BACKUP_NODES_MATCHER, f'node=~"{nodes}"')
    return spec


def alertmanager_yaml(receiver: Mapping[str, Any]) -> str:
    """alertmanager.yaml routing every alert but the silent ones to `receiver` (the body of one
    Alertmanager receiver: `webhook_configs`, `email_configs` or `slack_configs`)."""
    config = {
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "12h",
            "routes": [{"receiver": "null", "matchers": [f'alertname = "{name}"']} for name in SILENT],
        },
        # A critical alert mutes the warnings of the same alert and namespace.
        "inhibit_rules": [{"source_matchers": ["severity = critical"], "target_matchers": ["severity = warning"],
                           "equal": ["alertname", "namespace"]}],
        "receivers": [{"name": "null"}, {"name": RECEIVER, **receiver}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def receiver_body(kind: str, settings: Mapping[str, Any], secret: str | None) -> dict[str, Any]:
    """One Alertmanager receiver from the stack's `monitoring.alertReceiver` and its secret."""
    if kind == "webhook":
        return {"webhook_configs": [{"url": secret, "send_resolved": True}]}
    if kind == "slack":
        return {"slack_configs": [{"api_url": secret, "channel": settings["channel"], "send_resolved": True}]}
    email = {"to": settings["to"], "from": settings["from"], "smarthost": settings["smarthost"], "require_tls": True,
             "send_resolved": True}
    if settings.get("username"):
        email |= {"auth_username": settings["username"], "auth_password": secret}
    return {"email_configs": [email]}
