"""The deploy runner runs nothing from a pull request or an unprotected branch: the workflows
parsed as GitHub reads them, and the runner's own pre-job hook run as the runner runs it.
GitHub settings the repository cannot hold (ephemeral runner, runner group, environments
limited to main) are in docs/deploy-runner.md."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helpers import PROJECT

WORKFLOWS = PROJECT / ".github" / "workflows"
HOOK = PROJECT / "tools" / "deploy-runner-job-started.sh"
RUNNER_LABELS = {"self-hosted", "hybrid-ai-deployer"}
MAIN_ONLY_EVENTS = {"push", "schedule", "workflow_dispatch"}
ON_MAIN = "github.ref == 'refs/heads/main'"
# What each self-hosted job points at a directory of its own (RUNNER_TEMP is emptied at the
# start and end of every job), before any other step: nothing left by an earlier job is used.
FRESH = ("HOME", "PULUMI_HOME", "PIP_CACHE_DIR", "XDG_CACHE_HOME", "RUNNER_TOOL_CACHE", "AGENT_TOOLSDIRECTORY")
REPO = "example/hybrid-ai"


def load(path: Path) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load(path.read_text())
    doc: dict[str, Any] = {str(k): v for k, v in raw.items() if k is not True}
    doc["on"] = raw.get(True, raw.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    on = doc["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def labels(job: dict[str, Any]) -> set[str] | None:
    """The runner labels a job asks for; None when they are not literal (a group, an expression)."""
    runs_on = job.get("runs-on")
    values = [runs_on] if isinstance(runs_on, str) else runs_on
    if not isinstance(values, list) or any(not isinstance(v, str) or "${{" in v for v in values):
        return None
    return set(values)


def fresh_home_step(step: dict[str, Any]) -> set[str]:
    """The variables this step points into $RUNNER_TEMP through $GITHUB_ENV."""
    run = str(step.get("run") or "")
    if '>> "$GITHUB_ENV"' not in run:
        return set()
    return {name for name in FRESH if f'echo "{name}=$RUNNER_TEMP/' in run}


def problems(workflows: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for name, doc in sorted(workflows.items()):
        events = triggers(doc)
        main_only = set(events) <= MAIN_ONLY_EVENTS and (events.get("push") or {"branches": ["main"]}) == {"branches": ["main"]}
        for job_id, job in (doc.get("jobs") or {}).items():
            asked = labels(job)
            where = f"{name}: job {job_id}"
            if asked is None:
                found.append(f"{where}: runs-on is not a literal list of labels")
                continue
            if not asked & RUNNER_LABELS:
                continue
            if not main_only:
                found.append(f"{where}: runs on the deploy runner but triggers on {sorted(events)} (only push to main, schedule, workflow_dispatch)")
            if str(job.get("if") or "").strip() != ON_MAIN:
                found.append(f"{where}: runs on the deploy runner without `if: {ON_MAIN}`")
            environment = job.get("environment")
            if not (environment.get("name") if isinstance(environment, dict) else environment):
                found.append(f"{where}: runs on the deploy runner without an environment")
            steps = job.get("steps") or []
            for step in steps:
                uses = str(step.get("uses") or "")
                if uses.startswith("actions/cache") or "cache" in (step.get("with") or {}):
                    found.append(f"{where}: step {step.get('name') or uses} uses a cache")
            missing = set(FRESH) - (fresh_home_step(steps[0]) if steps else set())
            if missing:
                found.append(f"{where}: its first step does not point {sorted(missing)} into $RUNNER_TEMP")
    return found


def workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p) for p in sorted(WORKFLOWS.glob("*.yml"))}


def test_only_main_reaches_the_deploy_runner_with_fresh_homes_and_no_cache() -> None:
    assert workflows()
    assert problems(workflows()) == []


def _mutated(change: str) -> dict[str, dict[str, Any]]:
    w = copy.deepcopy(workflows())
    deploy, drift, ci = w["deploy.yml"], w["drift.yml"], w["ci.yml"]
    up = deploy["jobs"]["up"]
    if change == "pull_request trigger":
        deploy["on"]["pull_request"] = None
    elif change == "push to any branch":
        deploy["on"]["push"] = {"branches": ["**"]}
    elif change == "push of tags":
        deploy["on"]["push"]["tags"] = ["v*"]
    elif change == "dispatch from any branch":
        del drift["jobs"]["drift"]["if"]
    elif change == "no environment":
        del up["environment"]
    elif change == "cache restored":
        up["steps"].insert(2, {"uses": "actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830", "with": {"path": "~/.cache/pip", "key": "pip"}})
    elif change == "pip cache of setup-python":
        next(s for s in up["steps"] if "setup-python" in str(s.get("uses")))["with"]["cache"] = "pip"
    elif change == "shared Pulumi home":
        up["steps"][0]["run"] = up["steps"][0]["run"].replace('echo "PULUMI_HOME=$RUNNER_TEMP/', 'echo "PULUMI_HOME=$HOME/')
    elif change == "fresh home after the checkout":
        up["steps"].insert(0, up["steps"].pop(1))
    elif change == "pull request job on the runner":
        ci["jobs"]["test"]["runs-on"] = ["self-hosted", "linux", "hybrid-ai-deployer"]
    elif change == "runner chosen by an expression":
        ci["jobs"]["test"]["runs-on"] = "${{ github.event.pull_request.title }}"
    return w


@pytest.mark.parametrize(("change", "expected"), [
    ("pull_request trigger", "deploy.yml: job up: runs on the deploy runner but triggers on"),
    ("push to any branch", "deploy.yml: job up: runs on the deploy runner but triggers on"),
    ("push of tags", "deploy.yml: job up: runs on the deploy runner but triggers on"),
    ("dispatch from any branch", "drift.yml: job drift: runs on the deploy runner without `if:"),
    ("no environment", "deploy.yml: job up: runs on the deploy runner without an environment"),
    ("cache restored", "deploy.yml: job up: step actions/cache"),
    ("pip cache of setup-python", "deploy.yml: job up: step"),
    ("shared Pulumi home", "deploy.yml: job up: its first step does not point ['PULUMI_HOME']"),
    ("fresh home after the checkout", "deploy.yml: job up: its first step does not point"),
    ("pull request job on the runner", "ci.yml: job test: runs on the deploy runner but triggers on"),
    ("runner chosen by an expression", "ci.yml: job test: runs-on is not a literal list of labels"),
])
def test_the_check_catches_each_way_in(change: str, expected: str) -> None:
    found = problems(_mutated(change))
    assert any(p.startswith(expected) for p in found), found


# --- The runner's own pre-job hook ------------------------------------------------------------

def hook(**env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "DEPLOY_REPOSITORY": REPO, "GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/main", "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/deploy.yml@refs/heads/main"}
    return subprocess.run(["bash", "-e", str(HOOK)], env={**base, **env}, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("env", [
    {},
    {"GITHUB_EVENT_NAME": "schedule", "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/drift.yml@refs/heads/main"},
    {"GITHUB_EVENT_NAME": "workflow_dispatch"},
])
def test_the_hook_admits_deploy_and_drift_from_main(env: dict[str, str]) -> None:
    result = hook(**env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("env", "why"), [
    ({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge",
      "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/deploy.yml@refs/pull/7/merge"}, "event 'pull_request'"),
    ({"GITHUB_EVENT_NAME": "pull_request_target"}, "event 'pull_request_target'"),
    ({"GITHUB_REF": "refs/heads/feature", "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/deploy.yml@refs/heads/feature"}, "ref 'refs/heads/feature'"),
    ({"GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_REF": "refs/tags/main"}, "ref 'refs/tags/main'"),
    ({"GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/mine.yml@refs/heads/main"}, "workflow '"),
    ({"GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/deploy.yml@refs/heads/main-x"}, "workflow '"),
    ({"GITHUB_REPOSITORY": "fork/hybrid-ai", "GITHUB_WORKFLOW_REF": "fork/hybrid-ai/.github/workflows/deploy.yml@refs/heads/main"}, "repository 'fork/hybrid-ai'"),
    ({"DEPLOY_REPOSITORY": ""}, "DEPLOY_REPOSITORY is not set"),
    ({"GITHUB_EVENT_NAME": ""}, "event ''"),
])
def test_the_hook_refuses_anything_else_before_a_step_runs(env: dict[str, str], why: str) -> None:
    result = hook(**env)
    assert result.returncode == 1 and f"refusing this job: {why}" in result.stderr, result.stderr
