"""Chart pins from `charts/<name>.yaml`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from components.helm import ChartSpec

CHARTS = Path(__file__).resolve().parents[1] / "charts"


@cache
def pinned(name: str) -> ChartSpec:
    doc = yaml.safe_load((CHARTS / f"{name}.yaml").read_text())
    return ChartSpec(chart=doc["chart"], version=str(doc["version"]), repository=doc["repository"],
                     namespace=doc["namespace"], values=doc.get("values") or {}, hooks=tuple(doc.get("hooks") or ()))
