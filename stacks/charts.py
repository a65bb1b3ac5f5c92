"""Chart pins from `charts/<name>/chart.yaml` and the values we set, `charts/<name>/values.yaml`."""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import yaml

from components.kit.helm import ChartSpec
from stacks.config.sources import Sources

CHARTS = Path(__file__).resolve().parents[1] / "charts"

# The Gateway API CRDs, standard channel, from the release's own bundle: the version Traefik's
# chart last shipped and tested with its 3.7 line (traefik-helm-chart 1bb3570b, "update
# gateway API CRDs to v1.5.1"). Upgrading is this one line.
GATEWAY_API_VERSION = "v1.5.1"
GATEWAY_API_CRDS = f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"


@cache
def pinned(name: str) -> ChartSpec:
    doc = yaml.safe_load((CHARTS / name / "chart.yaml").read_text())
    values = yaml.safe_load((CHARTS / name / "values.yaml").read_text())
    return ChartSpec(chart=doc["chart"], version=str(doc["version"]), repository=doc["repository"],
                     namespace=doc["namespace"], values=values or {}, hooks=tuple(doc.get("hooks") or ()),
                     skip_await=bool(doc.get("skipAwait", False)))


def chart(name: str, sources: Sources) -> ChartSpec:
    """The pinned chart, fetched from the stack's chart source when it sets one."""
    spec = pinned(name)
    return spec if sources.charts is None else dataclasses.replace(spec, repository=sources.charts)


def gateway_api_crds(sources: Sources) -> str:
    """The Gateway API CRD bundle: the stack's own copy (URL or file), else the release's."""
    return sources.gateway_api_crds or GATEWAY_API_CRDS
