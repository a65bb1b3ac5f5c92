"""Upstream Helm charts, installed with helm.v4.Chart from a pinned spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.helm.v4 import Chart, RepositoryOptsArgs


@dataclass(frozen=True)
class ChartSpec:
    chart: str
    """Chart name."""
    version: str
    """Pinned chart version."""
    repository: str
    """Chart repository URL."""
    namespace: str
    """Namespace to install into."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Values pinned with the chart."""


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into `base` (dicts merge, everything else is replaced)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out


def install(name: str, spec: ChartSpec, values: Mapping[str, Any], namespace: pulumi.Input[str], opts: pulumi.ResourceOptions) -> Chart:
    return Chart(
        name,
        chart=spec.chart,
        version=spec.version,
        repository_opts=RepositoryOptsArgs(repo=spec.repository),
        namespace=namespace,
        values=merge(spec.values, values),
        opts=opts,
    )
