"""Upstream Helm charts from a pinned spec.

pulumi-kubernetes' `helm.v4.Chart` renders a chart like `helm template` and drops every
resource annotated `helm.sh/hook`: hooks never run. A chart whose hooks matter (a Job that
creates a webhook certificate, a post-install check that its webhook answers) is installed
as a `helm.v3.Release`, which runs them; the others stay a v4 Chart, whose resources Pulumi
tracks one by one. Which templates of a chart are hooks is recorded with its pin
(`charts/<name>/chart.yaml`, `hooks:`), read from the chart's source at that version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.helm import v3, v4

# First install: several images to pull on fresh nodes, and hook Jobs to run.
RELEASE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ChartSpec:
    chart: str
    """Chart name."""
    version: str
    """Pinned chart version."""
    repository: str
    """Chart repository URL (`https://...`, Helm's index.yaml under it) or OCI registry path (`oci://...`)."""
    namespace: str
    """Namespace to install into."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Values pinned with the chart."""
    hooks: Sequence[str] = ()
    """The chart's templates that are Helm hooks at this version (run only by a Release)."""
    skip_await: bool = False
    """Do not wait for the chart's objects to be ready (a v4 Chart; reason with the pin)."""


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into `base` (dicts merge, everything else is replaced)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out


def chart_source(spec: ChartSpec) -> tuple[str, str | None]:
    """(chart reference, repository URL) as Helm takes them: an OCI registry's chart is named by
    its full `oci://` reference, with no repository; a repository's by its name; a local archive
    (a verified copy, stacks/fetched.py) by its path, which Helm reads before any repository."""
    if spec.repository.endswith(".tgz") and "://" not in spec.repository:
        return spec.repository, None
    if spec.repository.startswith("oci://"):
        return f"{spec.repository.rstrip('/')}/{spec.chart}", None
    return spec.chart, spec.repository


def install(name: str, spec: ChartSpec, values: Mapping[str, Any], namespace: pulumi.Input[str],
            opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """The chart as a Release when it has hooks (they must run), else as a v4 Chart."""
    merged = merge(spec.values, values)
    chart, repo = chart_source(spec)
    version = None if chart == spec.repository else spec.version  # a local archive is its own version
    if spec.hooks:
        return v3.Release(
            name,
            name=spec.chart,  # the chart's usual object names (no random suffix)
            chart=chart,
            version=version,
            repository_opts=v3.RepositoryOptsArgs(repo=repo) if repo else None,
            namespace=namespace,
            values=merged,
            timeout=RELEASE_TIMEOUT_S,
            atomic=False,  # a failed first install stays inspectable; the next `up` upgrades it
            opts=opts,
        )
    return v4.Chart(
        name,
        chart=chart,
        version=version,
        repository_opts=v4.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        values=merged,
        skip_await=spec.skip_await or None,
        opts=opts,
    )
