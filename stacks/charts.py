"""Chart pins from `charts/<name>/chart.yaml` and the values we set, `charts/<name>/values.yaml`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml

from components.kit.helm import ChartSpec
from stacks.config.mirrors import qualified
from stacks.config.sources import Sources

CHARTS = Path(__file__).resolve().parents[1] / "charts"

# The Gateway API CRDs, standard channel, from the release's own bundle: the version Traefik's
# chart last shipped and tested with its 3.7 line (traefik-helm-chart 1bb3570b, "update
# gateway API CRDs to v1.5.1"). Upgrading is this one line.
GATEWAY_API_VERSION = "v1.5.1"
GATEWAY_API_CRDS = f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"
BUNDLE = f"gateway-api/{GATEWAY_API_VERSION}/standard-install.yaml"
"""The bundle's name in a stack's lock (`files:`, stacks/fetched.py) and in `make mirror LAYOUT=`."""


@cache
def pinned(name: str) -> ChartSpec:
    doc = yaml.safe_load((CHARTS / name / "chart.yaml").read_text())
    values = yaml.safe_load((CHARTS / name / "values.yaml").read_text())
    return ChartSpec(chart=doc["chart"], version=str(doc["version"]), repository=doc["repository"],
                     namespace=doc["namespace"], values=values or {}, hooks=tuple(doc.get("hooks") or ()),
                     skip_await=bool(doc.get("skipAwait", False)))


def chart_artifact(name: str) -> str:
    """The chart's archive as a stack's lock names it (`files:`, stacks/fetched.py)."""
    spec = pinned(name)
    return f"charts/{spec.chart}-{spec.version}.tgz"


def chart(name: str, sources: Sources, pins: Mapping[str, str] | None = None, files: Mapping[str, str] | None = None) -> ChartSpec:
    """The pinned chart, fetched from the stack's chart source when it sets one (or, on a mirrored
    stack, the verified local copy in `files`, stacks/fetched.py), its images by digest where the
    stack's image lock (`pins`, stacks/images.py) holds them."""
    spec = pinned(name)
    if files and chart_artifact(name) in files:
        spec = dataclasses.replace(spec, repository=files[chart_artifact(name)])
    elif sources.charts is not None:
        spec = dataclasses.replace(spec, repository=sources.charts)
    if pins and (extra := chart_values(name, pins)):
        spec = dataclasses.replace(spec, values=merged(spec.values, extra))
    return spec


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def gateway_api_crds(sources: Sources, files: Mapping[str, str] | None = None) -> str:
    """The Gateway API CRD bundle: the verified local copy on a mirrored stack (stacks/fetched.py),
    else the stack's own copy (URL or file), else the release's."""
    if files and BUNDLE in files:
        return files[BUNDLE]
    return sources.gateway_api_crds or GATEWAY_API_CRDS


class ChartImage(NamedTuple):
    """One image a chart runs at its pinned version, and the value that pins it by digest:
    `tag` (the chart joins `<repository>:<tag>`, so `<tag>@sha256:<hex>` is set), `sha` (the chart
    adds `@sha256:` to the value: the hex alone) or `digest` (the chart adds `@`: `sha256:<hex>`)."""

    image: str
    path: str
    form: Literal["tag", "sha", "digest"]

    def value(self, digest: str) -> str:
        if self.form == "tag":
            return f"{self.image.rsplit(':', 1)[1]}@{digest}"
        return digest.removeprefix("sha256:") if self.form == "sha" else digest


def chart_images(name: str) -> list[ChartImage] | None:
    """Each image the chart runs at its pinned version, from `images:` in charts/<name>/chart.yaml
    (each with one of `tag:`, `sha:`, `digest:`, the values path of its pin); None when the pin
    lists none."""
    doc = yaml.safe_load((CHARTS / name / "chart.yaml").read_text())
    if "images" not in doc:
        return None
    return [ChartImage(i["image"], *next((i[f], f) for f in ("tag", "sha", "digest") if f in i)) for i in doc["images"]]


def chart_values(name: str, pins: Mapping[str, str]) -> dict[str, Any]:
    """Values that make the chart's images digest references, each in the form its chart's image
    template reads (docs/upstream.md)."""
    values: dict[str, Any] = {}
    for c in chart_images(name) or []:
        if qualified(c.image) in pins:
            *parents, leaf = c.path.split(".")
            node = values
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = c.value(pins[qualified(c.image)])
    return values
