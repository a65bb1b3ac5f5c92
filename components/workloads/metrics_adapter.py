"""prometheus-adapter's values: the custom metrics API an HPA reads an LLM server's queue depth
from, and the scrape jobs that give Prometheus the models' own metrics.

The adapter turns `vllm:num_requests_waiting`, as Prometheus scraped it from each vLLM pod
(labelled with the pod's namespace and name), into the per-pod custom metric
`vllm_num_requests_waiting`; an HPA with a `Pods` metric averages it over the Deployment's pods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.workloads.vllm import QUEUE_METRIC


@dataclass(frozen=True)
class ScrapeTarget:
    """A model whose own metrics Prometheus scrapes."""

    name: str
    """Its app.kubernetes.io/name."""
    port: int
    path: str
    keep: str | None = None
    """The only metric names stored from it (a regex); None: any but other exporters' names."""
    model_name: str | None = None
    """Written over every series' `model_name` (vLLM's served name), so a pod cannot speak for another model."""


# What a scrape of a model pod may not store: the names other jobs' alerts and dashboards read
# (DCGM, TF-Serving, vLLM, node-exporter, kube-state-metrics, cert-manager, the mesh's exporter).
RESERVED_NAMES = r"(DCGM|node|kube|certmanager|hybridai|prometheus|alertmanager)_.+|:tensorflow:.+|vllm:.+"
# Each scrape of a pod a workstation runs is bounded: one over the limits fails as a whole (its
# own series go, not Prometheus).
SCRAPE_LIMITS = {"sample_limit": 20000, "label_limit": 30, "label_value_length_limit": 512}


def names_kept(regex: str) -> list[dict[str, Any]]:
    return [{"source_labels": ["__name__"], "regex": regex, "action": "keep"}]


def queue_rule() -> dict[str, Any]:
    """The adapter rule (config format of prometheus-adapter v0.12.0, docs/config.md)."""
    return {
        "seriesQuery": 'vllm:num_requests_waiting{namespace!="",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": "^vllm:num_requests_waiting$", "as": QUEUE_METRIC},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }


def adapter_values(prometheus_url: str, node_selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "prometheus": {"url": prometheus_url, "port": 9090},
        "nodeSelector": dict(node_selector),
        "rules": {"custom": [queue_rule()]},
    }


def scrape_job(target: ScrapeTarget) -> dict[str, Any]:
    """A pod-discovery scrape job for one model, labelling its series with the pod's namespace
    and name (what the adapter maps to Kubernetes objects), storing only its own names."""
    if target.keep is not None:
        names = names_kept(target.keep)
    else:
        names = [{"source_labels": ["__name__"], "regex": RESERVED_NAMES, "action": "drop"}]
    if target.model_name is not None:
        names.append({"target_label": "model_name", "replacement": target.model_name})
    return {
        "job_name": f"model-{target.name}",
        "metrics_path": target.path,
        "metric_relabel_configs": names,
        **SCRAPE_LIMITS,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_container_port_number"],
             "regex": f"{target.name};{target.port}", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def model_scrape_jobs(targets: Sequence[ScrapeTarget]) -> list[dict[str, Any]]:
    return [scrape_job(t) for t in sorted(targets, key=lambda t: t.name)]
