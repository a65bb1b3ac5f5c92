"""`hybrid-ai:sources`: the pinned charts and the Gateway API bundle fetched from where the stack
says (a Helm repository or an OCI registry; a URL or a file), names and versions unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks.charts import CHARTS, GATEWAY_API_CRDS
from stacks.load import ConfigError, validate
from tests.support.helpers import evaluate_config, stack_config

CHART_TYPES = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release")


def charts_of(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ev = evaluate_config(raw)
    return {r.name: r.inputs for t in CHART_TYPES for r in ev.of_type(t)}


def bundle_of(raw: dict[str, Any]) -> Any:
    ev = evaluate_config(raw)
    return next(r.inputs["file"] for r in ev.of_type("kubernetes:yaml/v2:ConfigFile"))


def test_by_default_each_chart_comes_from_its_own_repository() -> None:
    charts = charts_of(stack_config("dev"))
    assert len(charts) == 5
    for inputs in charts.values():
        pin = (CHARTS / str(inputs["chart"]) / "chart.yaml").read_text()
        assert f"repository: {inputs['repositoryOpts']['repo']}" in pin
    assert bundle_of(stack_config("dev")) == GATEWAY_API_CRDS


def test_a_helm_repository_serves_every_chart_at_its_pinned_version() -> None:
    default = charts_of(stack_config("dev"))
    raw = stack_config("dev") | {"sources": {"charts": "https://charts.example.com/mirror"}}
    for name, inputs in charts_of(raw).items():
        assert inputs["repositoryOpts"] == {"repo": "https://charts.example.com/mirror"}
        assert (inputs["chart"], inputs["version"]) == (default[name]["chart"], default[name]["version"])


def test_an_oci_registry_names_each_chart_by_its_full_reference() -> None:
    default = charts_of(stack_config("dev"))
    raw = stack_config("dev") | {"sources": {"charts": "oci://registry.example.com/charts/"}}
    for name, inputs in charts_of(raw).items():
        assert inputs["chart"] == f"oci://registry.example.com/charts/{default[name]['chart']}"
        assert inputs["version"] == default[name]["version"]
        assert "repo" not in (inputs.get("repositoryOpts") or {})


@pytest.mark.parametrize("bundle", ["https://mirror.example.com/gateway-api/v1.5.1/standard-install.yaml", "file"])
def test_the_gateway_api_bundle_comes_from_the_stacks_url_or_file(bundle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if bundle == "file":
        monkeypatch.chdir(tmp_path)
        Path("standard-install.yaml").write_text("# the site's copy\n")
        bundle = "standard-install.yaml"
    assert bundle_of(stack_config("dev") | {"sources": {"gatewayApiCrds": bundle}}) == bundle


def test_a_missing_bundle_file_is_named_with_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(stack_config("dev") | {"sources": {"gatewayApiCrds": "mirror/none.yaml"}})
    assert err.value.problems == ["hybrid-ai:sources.gatewayApiCrds: no such file; give the path of the Gateway API bundle "
                                  "(relative to the project) or its URL"]
