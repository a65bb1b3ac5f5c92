"""Monitoring: kube-prometheus-stack, dcgm-exporter on GPU nodes, the stack's alerts as a
PrometheusRule and its Grafana dashboards as ConfigMaps the Grafana sidecar loads.

Grafana has no Ingress: operators reach it with `kubectl port-forward` over the VPN, and a
NetworkPolicy admits only the monitoring namespace's own pods to it. Prometheus scrapes
TF-Serving (its Prometheus endpoint, on the REST port) and cert-manager's controller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import ConfigMap, Secret
from pulumi_kubernetes.networking.v1 import NetworkPolicy

from components.kit.helm import ChartSpec, install
from components.kit.kube import GPU_NODES, allow_ingress, manifest, metadata
from components.kit.outputs import after
from components.kit.quantity import MEBIBYTE, parse_quantity
from components.workloads.alerting import CONFIG_SECRET, alert_rules, alertmanager_yaml
from components.workloads.metrics_adapter import SCRAPE_LIMITS, ScrapeTarget, adapter_values, model_scrape_jobs, names_kept
from components.workloads.namespace import open_namespace

ASSETS = Path(__file__).resolve().parents[2] / "charts" / "monitoring"
DASHBOARDS = ASSETS / "dashboards"
# kube-prometheus-stack 88.5.3 values.yaml, grafana.sidecar.dashboards.label / labelValue.
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
GRAFANA_PORT = 80  # the grafana chart's Service port; the pod listens on 3000
TF_METRICS_PATH = "/monitoring/prometheus/metrics"
CERT_MANAGER_METRICS_PORT = 9402


@dataclass
class MonitoringArgs:
    stack: ChartSpec
    """kube-prometheus-stack pin."""
    gpu_exporter: ChartSpec | None
    """dcgm-exporter pin; None when the stack has no GPU node."""
    workload_namespace: pulumi.Input[str]
    """Namespace of the models (TF-Serving is scraped there)."""
    tf_serving: str | None
    """Name of the TF-Serving workload, when there is one."""
    tf_rest_port: int
    """TF-Serving's REST port, which also serves its metrics."""
    cert_manager_namespace: str
    """Where cert-manager's controller runs."""
    retention: str
    storage_size: str
    storage_class: str
    grafana_storage_size: str
    node_selector: Mapping[str, str]
    """Where Prometheus, Alertmanager and Grafana run (the cloud nodes)."""
    gpu_tolerations: Sequence[Mapping[str, str]] = ()
    backup_nodes: Sequence[str] = ()
    """Nodes whose textfile collector may report the datastore backup (the control plane)."""
    backups: bool = False
    """Datastore backups are on: their alert (DatastoreBackupMissing) exists only then."""
    alert_receiver: pulumi.Input[Mapping[str, Any]] | None = None
    """One Alertmanager receiver (its credentials a Pulumi secret) every alert goes to; None: the chart's config."""
    cloud_ready: Sequence[pulumi.Output[Any]] = ()
    """Resolve once the cloud nodes are Ready (Prometheus, Grafana and their volumes go there)."""
    gpu_ready: Sequence[pulumi.Output[Any]] = ()
    """Resolve once the GPU nodes are Ready and the `nvidia` RuntimeClass exists (dcgm-exporter)."""
    models: Sequence[ScrapeTarget] = ()
    """Models whose own metrics Prometheus scrapes (vLLM servers, `metricsPath`)."""
    metrics_adapter: ChartSpec | None = None
    """prometheus-adapter pin, when an HPA scales on a custom metric (a public vLLM model)."""


def scrape_jobs(args: MonitoringArgs) -> list[dict[str, Any]]:
    """Prometheus scrape configs by pod discovery: no ServiceMonitor, nothing changed in the
    charts or workloads they watch."""
    jobs: list[dict[str, Any]] = [{
        "job_name": "cert-manager",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [args.cert_manager_namespace]}}],
        "relabel_configs": [{"source_labels": ["__meta_kubernetes_pod_container_port_number"],
                             "regex": str(CERT_MANAGER_METRICS_PORT), "action": "keep"}],
    }]
    if args.tf_serving:
        jobs.append({
            "job_name": "tf-serving",
            "metrics_path": TF_METRICS_PATH,
            "kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_container_port_number"],
                 "regex": f"{args.tf_serving};{args.tf_rest_port}", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
            "metric_relabel_configs": names_kept(":tensorflow:.+"),  # it runs on workstations too
            **SCRAPE_LIMITS,
        })
    return jobs + model_scrape_jobs(args.models)


def stack_values(args: MonitoringArgs) -> dict[str, Any]:
    """What the program adds to the pinned values: sizes, storage, placement, scrape jobs."""
    claim = {"spec": {"storageClassName": args.storage_class, "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": args.storage_size}}}}
    return {
        "prometheus": {"prometheusSpec": {
            "retention": args.retention,
            "retentionSize": retention_size(args.storage_size),
            "storageSpec": {"volumeClaimTemplate": claim},
            "nodeSelector": dict(args.node_selector),
            "additionalScrapeConfigs": scrape_jobs(args),
        }},
        "alertmanager": {"alertmanagerSpec": {"nodeSelector": dict(args.node_selector)} | (
            {"useExistingSecret": True, "configSecret": CONFIG_SECRET} if args.alert_receiver is not None else {})},
        # Every pod of the chart that can read Secrets cluster-wide, create pods (the operator's
        # StatefulSets) or change admission webhooks and CRDs (the hook Jobs) runs on the cloud nodes.
        "crds": {"upgradeJob": {"nodeSelector": dict(args.node_selector)}},
        "prometheusOperator": {"nodeSelector": dict(args.node_selector),
                               "admissionWebhooks": {"patch": {"nodeSelector": dict(args.node_selector)}}},
        "kube-state-metrics": {"nodeSelector": dict(args.node_selector)},
        # Its sidecar reads the dashboards of its own namespace only (with the namespaced Role of values.yaml).
        "grafana": {"nodeSelector": dict(args.node_selector), "sidecar": {"dashboards": {"searchNamespace": args.stack.namespace}},
                    "persistence": {"enabled": True, "size": args.grafana_storage_size, "storageClassName": args.storage_class}},
        "prometheus-node-exporter": {
            "tolerations": [{"operator": "Exists"}],  # every node, GPU taints too
            "prometheus": {"monitor": {"metricRelabelings": node_metric_keep(args.backup_nodes)}},
        },
    }


def node_metric_keep(backup_nodes: Sequence[str]) -> list[dict[str, Any]]:
    """node-exporter's keep-list: its own `node_*` series and the mesh metrics from every node,
    the datastore backup's only from the backup nodes (any other host's root could write it
    into its textfile directory and silence DatastoreBackupMissing). `node` is the target label
    set by the ServiceMonitor's relabelings from the pod's node, which the host cannot forge."""
    nodes = "|".join(re.escape(n) for n in backup_nodes) or "$^"
    return [{"sourceLabels": ["__name__", "node"], "separator": ";", "action": "keep",
             "regex": f"(node_.+|hybridai_wireguard_.+);.*|hybridai_datastore_backup_.+;({nodes})"}]


def retention_size(storage_size: str) -> str:
    """85% of the volume, so Prometheus drops old blocks before the disk fills."""
    mebibytes = int(parse_quantity(storage_size) / MEBIBYTE)
    return f"{mebibytes * 85 // 100}MB"


def dashboards() -> dict[str, str]:
    """Dashboard file name -> its JSON text (checked to parse)."""
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        json.loads(path.read_text())
        out[path.name] = path.read_text()
    return out


class Monitoring(pulumi.ComponentResource):
    """The monitoring namespace and everything in it."""

    grafana_service: pulumi.Output[str]
    """`<namespace>/<service>` of Grafana, for `kubectl port-forward`."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # node-exporter (host network, PID, root file system) and dcgm-exporter (SYS_ADMIN) need it.
        namespace = open_namespace(name, args.stack.namespace, "privileged", child)
        if args.alert_receiver is not None:
            config: pulumi.Output[str] = pulumi.Output.secret(pulumi.Output.from_input(args.alert_receiver).apply(alertmanager_yaml))
            Secret(f"{name}-alertmanager-config", metadata=metadata(CONFIG_SECRET, namespace, "alertmanager"),
                   string_data={"alertmanager.yaml": config}, opts=child)
        release = install(f"{name}-stack", args.stack, stack_values(args), after(namespace, *args.cloud_ready), child)
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[release])  # CRDs come with the release
        if args.gpu_exporter is not None:
            install(f"{name}-dcgm-exporter", args.gpu_exporter, {"nodeSelector": dict(GPU_NODES), "tolerations": [dict(t) for t in args.gpu_tolerations]},
                    after(namespace, *args.gpu_ready), after_crds)
        CustomResource(f"{name}-alerts", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
                       metadata=metadata("hybrid-ai-alerts", namespace, "monitoring"),
                       spec=alert_rules(args.backups, args.backup_nodes), opts=after_crds)
        for file, text in dashboards().items():
            dash = f"dashboard-{file.removesuffix('.json')}"
            meta = metadata(dash, namespace, "dashboard")
            meta["labels"] = meta["labels"] | DASHBOARD_LABEL
            ConfigMap(f"{name}-{dash}", metadata=meta, data={file: text}, opts=child)
        NetworkPolicy(f"{name}-grafana", metadata=metadata("grafana-from-monitoring", namespace, "network-policy"), spec=manifest({
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],  # the namespace's own pods only: no public path
        }), opts=child)
        self._models(name, args, namespace, release)
        if args.tf_serving:
            scrape = f"{args.tf_serving}-from-prometheus"
            NetworkPolicy(f"{name}-scrape-{args.tf_serving}", **allow_ingress(scrape, args.workload_namespace, args.tf_serving, args.tf_rest_port, {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.stack.namespace}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }), opts=child)
        self.grafana_service = namespace.apply(lambda n: f"{n}/{args.stack.chart}-grafana")
        self.register_outputs({"grafanaService": self.grafana_service})

    def _models(self, name: str, args: MonitoringArgs, namespace: pulumi.Output[str], release: pulumi.Resource) -> None:
        """Prometheus in to each scraped model, and the metrics adapter when an HPA needs it."""
        prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.stack.namespace}},
                      "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
        for t in args.models:
            policy = f"{t.name}-from-prometheus"
            NetworkPolicy(f"{name}-scrape-{t.name}", **allow_ingress(policy, args.workload_namespace, t.name, t.port, prometheus),
                          opts=pulumi.ResourceOptions(parent=self))
        if args.metrics_adapter is not None:
            # kube-prometheus-stack's Prometheus Service (`<release>-prometheus`, port 9090).
            url = f"http://{args.stack.chart}-prometheus.{args.stack.namespace}.svc"
            install(f"{name}-metrics-adapter", args.metrics_adapter, adapter_values(url, args.node_selector), namespace,
                    pulumi.ResourceOptions(parent=self, depends_on=[release]))
