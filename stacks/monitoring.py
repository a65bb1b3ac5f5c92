"""Wiring of the monitoring layer and the stack's operator-facing outputs (URLs, host table)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi

from components.kit.kube import CLOUD_NODES
from components.workloads.alerting import receiver_body
from components.workloads.monitoring import GRAFANA_PORT, Monitoring, MonitoringArgs
from components.workloads.tf_serving import REST_PORT
from stacks.charts import chart
from stacks.config import StackConfig
from stacks.config.hosts import Role
from stacks.llm import queue_autoscaled, scrape_targets

GRAFANA_LOCAL_PORT = 3000


def build_monitoring(cfg: StackConfig, workload_namespace: pulumi.Input[str], tf_serving: str | None,
                     tolerations: list[dict[str, str]], opts: pulumi.ResourceOptions,
                     ready: Mapping[str, Sequence[pulumi.Output[Any]]],
                     secret: Callable[[str], pulumi.Output[str]], pins: Mapping[str, str] | None = None,
                     files: Mapping[str, str] | None = None) -> Monitoring | None:
    """The monitoring layer when enabled; `ready` holds what must exist before the cloud side
    (Prometheus, Grafana) and the GPU side (dcgm-exporter: the nodes and the `nvidia` RuntimeClass)."""
    m = cfg.monitoring
    if not m.enabled:
        return None
    has_gpus = any(h.gpu is not None and h.in_cluster for h in cfg.hosts)
    return Monitoring("monitoring", MonitoringArgs(
        stack=chart("kube-prometheus-stack", cfg.sources, pins, files), gpu_exporter=chart("dcgm-exporter", cfg.sources, pins, files) if has_gpus else None,
        workload_namespace=workload_namespace, tf_serving=tf_serving, tf_rest_port=REST_PORT,
        cert_manager_namespace=chart("cert-manager", cfg.sources).namespace, retention=m.retention, storage_size=m.storage_size,
        storage_class=m.storage_class, grafana_storage_size=m.grafana_storage_size,
        node_selector=dict(CLOUD_NODES), gpu_tolerations=tolerations,
        backup_nodes=[h.name for h in cfg.hosts if h.in_cluster and Role.CONTROL_PLANE.value in h.roles],
        backups=cfg.backup.enabled, alert_receiver=alert_receiver(cfg, secret),
        cloud_ready=ready["cloud"], gpu_ready=ready["gpu"],
        models=scrape_targets(cfg), metrics_adapter=chart("prometheus-adapter", cfg.sources, pins, files) if queue_autoscaled(cfg) else None,
    ), opts=opts)


def alert_receiver(cfg: StackConfig, secret: Callable[[str], pulumi.Output[str]]) -> pulumi.Output[dict[str, Any]] | None:
    """The stack's Alertmanager receiver, its credential read from its secret config key."""
    r = cfg.monitoring.alert_receiver
    if r is None:
        return None
    kind, settings = next((k, v) for k, v in (("webhook", r.webhook), ("email", r.email), ("slack", r.slack)) if v is not None)
    fields = settings.model_dump(by_alias=True)
    key = r.secret_key()
    credential = secret(key[0]) if key else pulumi.Output.from_input("")
    return credential.apply(lambda value: receiver_body(kind, fields, value or None))


def monitoring_outputs(monitoring: Monitoring | None) -> dict[str, Any] | None:
    """How an operator reaches Grafana: a port-forward over the VPN, then a local URL."""
    if monitoring is None:
        return None
    return {
        "grafanaUrl": f"http://localhost:{GRAFANA_LOCAL_PORT}",
        "grafanaPortForward": monitoring.grafana_service.apply(
            lambda s: f"kubectl -n {s.split('/')[0]} port-forward svc/{s.split('/')[1]} {GRAFANA_LOCAL_PORT}:{GRAFANA_PORT}"),
    }


def public_urls(cfg: StackConfig) -> dict[str, str]:
    """Every public model's URL on the ingress host."""
    if not cfg.ingress.domain:
        return {}
    scheme = "http" if cfg.ingress.tls == "none" else "https"
    return {m.name: f"{scheme}://{cfg.ingress.domain}{m.public_path}" for m in cfg.models if m.public_path}


def host_table(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Site -> host -> one line: roles, VPN address, GPU (kind x count, time-slicing replicas),
    reachability. Plain config facts, for `pulumi stack output hosts --json` at a glance."""
    table: dict[str, dict[str, str]] = {s.name: {} for s in cfg.sites}
    for h in cfg.hosts:
        parts = [",".join(str(r) for r in h.roles), str(cfg.vpn_address(h))]
        if h.gpu is not None:
            parts.append(f"{h.gpu.model} x{h.gpu.count}, time-slicing x{cfg.replicas_of(h)}")
        parts.append("public endpoint" if cfg.has_public_endpoint(h) else "behind NAT")
        table[h.site][h.name] = "; ".join(parts)
    return table
