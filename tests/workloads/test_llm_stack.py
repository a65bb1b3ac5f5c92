"""The `llm` example stack (Pulumi.llm.yaml) passes what the reference plans pass: strict
schema validation, checkov, the policy pack, and the Gateway API schema for its routes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.policy.conftest import RESOURCE_RULES, resource_args, rules, stack_args, violations
from tests.support.helpers import PROJECT, evaluate_config, stack_config
from tests.workloads.test_workloads import K8S_VERSION, NOT_MANIFESTS, TOOLS, kind_of, tool
from tools.render.evaluate import Evaluation
from tools.render.write import write_all


@pytest.fixture(scope="module")
def llm() -> Evaluation:
    return evaluate_config(stack_config("llm"), stack="llm")


@pytest.fixture(scope="module")
def manifests(llm: Evaluation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render-llm")
    write_all(llm, out)
    return out / "artifacts" / "kubernetes"


def test_the_llm_stack_serves_chat_beside_the_ocr_engines(llm: Evaluation) -> None:
    names = {r.name for r in llm.resources}
    assert {"chat-deployment", "ocr-engine-deployment", "layout-engine-deployment", "tf-serving-deployment"} <= names
    assert llm.outputs["publicEndpoints"] == {"receipt-api": "https://api.example.com/receipt", "chat": "https://api.example.com/llm"}


def test_every_manifest_passes_strict_schema_validation(manifests: Path) -> None:
    files = sorted(p for p in manifests.glob("*.yaml") if kind_of(p) not in NOT_MANIFESTS)
    assert any("chat" in p.name for p in files)
    validate = tool("kubernetes-validate", PROJECT / ".venv" / "bin")
    result = subprocess.run([validate, "--strict", "-k", K8S_VERSION, "--quiet", *map(str, files)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing(manifests: Path) -> None:
    checkov = tool("checkov", TOOLS)
    result = subprocess.run([checkov, "-d", str(manifests), "--config-file", str(PROJECT / ".checkov.yaml")],
                            capture_output=True, text=True, timeout=600, cwd=PROJECT)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Failed checks: 0" in result.stdout


def test_the_plan_passes_every_policy(llm: Evaluation) -> None:
    for r in llm.resources:
        for check in RESOURCE_RULES:
            assert violations(check, resource_args(llm, r.name)) == [], (check.__name__, r.name)
    assert violations(rules.no_world_open_ports, stack_args(llm)) == []
