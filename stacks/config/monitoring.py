"""The `monitoring` config section."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from stacks.config.types import ConfigKeyName, Email, Named, Schema, StorageClassName, number_as_text, quantity, strict

Duration = Annotated[str, strict(r"[1-9][0-9]{0,3}[hdw]", "not a retention; use hours, days or weeks, e.g. '7d' or '2w'")]
Size = Annotated[str, BeforeValidator(number_as_text),
                 quantity("not a volume size; write a number and a unit as Kubernetes does, e.g. '10Gi' or '10G'"),
                 Named("Kubernetes quantity (bytes), e.g. `10Gi`")]
SmartHost = Annotated[str, strict(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}",
                                  "not a mail server; use host:port, e.g. 'smtp.example.org:587'")]
SmtpUser = Annotated[str, strict(r"[A-Za-z0-9@._+-]{1,128}", "not an SMTP login; up to 128 letters, digits and @._+-")]
SlackChannel = Annotated[str, strict(r"[#@]?[a-z0-9][a-z0-9._-]{0,79}", "not a Slack channel; use e.g. '#ops'")]


class WebhookReceiver(Schema):
    url_config: ConfigKeyName = Field(
        default="alertWebhookUrl",
        description="Name of the secret config key holding the webhook URL (it often carries a token; `pulumi config set --secret`).")


class EmailReceiver(Schema):
    to: Email = Field(description="Where alerts go.")
    sender: Email = Field(alias="from", description="The sender address.")
    smarthost: SmartHost = Field(description="SMTP server as host:port; Alertmanager requires TLS (STARTTLS) to it.")
    username: SmtpUser | None = Field(default=None, description="SMTP login; none: no authentication.")
    password_config: ConfigKeyName = Field(
        default="alertSmtpPassword", description="Name of the secret config key holding the SMTP password (used with `username`).")


class SlackReceiver(Schema):
    channel: SlackChannel = Field(description="Channel the alerts are posted to, e.g. `#ops`.")
    api_url_config: ConfigKeyName = Field(
        default="alertSlackApiUrl", description="Name of the secret config key holding the Slack incoming-webhook URL.")


class AlertReceiver(Schema):
    """Where Alertmanager sends every firing alert: exactly one of webhook, email, Slack."""

    webhook: WebhookReceiver | None = Field(default=None, description="POST each alert group as JSON to a URL.")
    email: EmailReceiver | None = Field(default=None, description="Send each alert group by e-mail.")
    slack: SlackReceiver | None = Field(default=None, description="Post each alert group to a Slack channel.")

    @model_validator(mode="after")
    def _exactly_one(self) -> AlertReceiver:
        if sum(r is not None for r in (self.webhook, self.email, self.slack)) != 1:
            raise ValueError("set exactly one of `webhook`, `email` or `slack`")
        return self

    def secret_key(self) -> tuple[str, str] | None:
        """(secret config key, the config path naming it), if this receiver needs one."""
        if self.webhook is not None:
            return self.webhook.url_config, "monitoring.alertReceiver.webhook.urlConfig"
        if self.email is not None and self.email.username is not None:
            return self.email.password_config, "monitoring.alertReceiver.email.passwordConfig"
        if self.slack is not None:
            return self.slack.api_url_config, "monitoring.alertReceiver.slack.apiUrlConfig"
        return None


class Monitoring(Schema):
    """Prometheus, Grafana, dcgm-exporter and the mesh's handshake metrics."""

    enabled: bool = Field(
        default=False,
        description="Install kube-prometheus-stack, dcgm-exporter, the alerts and dashboards, and the WireGuard metrics timer "
        "on every cluster host. Off unless set: it needs 1-2 GB of memory on the cloud nodes (Prometheus alone up to 1.5 GiB).")
    retention: Duration = Field(default="7d", description="How long Prometheus keeps samples, e.g. `7d`.")
    storage_size: Size = Field(default="10Gi", description="Prometheus' volume; samples are dropped before it fills (85%).")
    storage_class: StorageClassName = Field(default="microk8s-hostpath", description="Storage class of the Prometheus and Grafana volumes.")
    grafana_storage_size: Size = Field(default="1Gi", description="Grafana's volume (its database).")
    alert_receiver: AlertReceiver | None = Field(
        default=None, description="Where Alertmanager sends firing alerts (webhook, e-mail or Slack; credentials in a secret config key). "
        "None: alerts show only in Alertmanager and Grafana.")
    mesh_interval_seconds: int = Field(default=30, ge=10, le=300, description="How often each host writes its WireGuard peers' handshake age and transfer.")
