"""The workloads' namespace is theirs alone: Pod Security `restricted` and deny-by-default go on it,
and destroy deletes it, so it can be neither one of Kubernetes' own nor one the program makes for
a chart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks.charts import CHARTS, pinned

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def chart_namespaces() -> dict[str, list[str]]:
    """Namespace -> the charts the program installs into it (by name)."""
    found: dict[str, list[str]] = {}
    for chart in sorted(p.name for p in CHARTS.iterdir() if (p / "chart.yaml").is_file()):
        found.setdefault(pinned(chart).namespace, []).append(pinned(chart).chart)
    return found


def workload_namespace(cfg: StackConfig) -> list[str]:
    ns = cfg.cluster.namespace
    if ns in SYSTEM_NAMESPACES:
        return [f"cluster.namespace: '{ns}' is a namespace of Kubernetes itself; give the workloads a namespace of their own, e.g. 'hybrid-ai'"]
    if charts := chart_namespaces().get(ns):
        return [f"cluster.namespace: '{ns}' is taken: the program creates it for the {' and '.join(charts)} chart; give the workloads "
                "a namespace of their own, e.g. 'hybrid-ai'"]
    return []
