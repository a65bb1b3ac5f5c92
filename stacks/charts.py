"""Chart pins from `charts/<name>/chart.yaml` and the values we set, `charts/<name>/values.yaml`."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from components.kit.helm import ChartSpec

CHARTS = Path(__file__).resolve().parents[1] / "charts"


@cache
def pinned(name: str) -> ChartSpec:
    doc = yaml.safe_load((CHARTS / name / "chart.yaml").read_text())
    values = yaml.safe_load((CHARTS / name / "values.yaml").read_text())
    return ChartSpec(chart=doc["chart"], version=str(doc["version"]), repository=doc["repository"],
                     namespace=doc["namespace"], values=values or {}, hooks=tuple(doc.get("hooks") or ()))
