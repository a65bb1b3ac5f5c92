"""`make check`: the render plus the policy pack's rules, offline, refusing what
`pulumi preview --policy-pack policy` would refuse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import PROJECT
from tools.check import main


def _stack(folder: Path, name: str, text: str) -> None:
    (folder / f"Pulumi.{name}.yaml").write_text(text)


def test_make_check_passes_the_dev_stack(tmp_path: Path) -> None:
    result = subprocess.run(["make", "-s", "check", "STACK=dev", f"OUT={tmp_path / 'out'}"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"check: stack 'dev': 0 policy violation\(s\) \(\d+ policies: ssh-host-key-pinned, ", result.stdout), result.stdout
    assert (tmp_path / "out" / "plan.json").exists()  # the render is part of the check


def test_every_pull_request_checks_every_stack() -> None:
    flow = yaml.safe_load((PROJECT / ".github" / "workflows" / "plan-diff.yml").read_text())
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as true
    steps = [step for job in flow["jobs"].values() for step in job["steps"] if "tools.check" in step.get("run", "")]
    assert len(steps) == 1 and not steps[0].get("continue-on-error"), steps
    script = steps[0]["run"]
    assert "for stack in $(ls Pulumi.*.yaml" in script and "|| status=1" in script and script.rstrip().endswith('exit "$status"'), script


def test_production_lets_encrypt_on_a_non_production_stack_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = (PROJECT / "Pulumi.dev.yaml").read_text()
    assert "    tls: letsencrypt-staging\n" in dev
    _stack(tmp_path, "staging", dev.replace("    tls: letsencrypt-staging\n", "    tls: letsencrypt\n"))
    assert main(["--stack", "staging", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "check: letsencrypt-production-only-on-prod: ingress-issuer: " in err, err
    # ... which the policy config can allow, as `--policy-pack-config` does for the CLI.
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"letsencrypt-production-only-on-prod": {"productionStacks": ["prod", "staging"]}}))
    assert main(["--stack", "staging", "--dir", str(tmp_path), "--out", str(tmp_path / "out"), "--policy-config", str(config)]) == 0


def test_time_slicing_above_the_policy_maximum_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(PROJECT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"time-slicing-replicas-bounded": {"maxTimeSlicingReplicas": 2, "enforcementLevel": "mandatory"}}))
    assert main(["--stack", "dev", "--dir", str(tmp_path), "--out", str(tmp_path / "out"), "--policy-config", str(config)]) == 1
    assert "check: time-slicing-replicas-bounded: " in capsys.readouterr().err


def test_a_stack_that_does_not_render_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _stack(tmp_path, "bad", "config:\n  hybrid-ai:vpn: {mtu: 13}\n")
    assert main(["--stack", "bad", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "hybrid-ai:vpn.mtu" in capsys.readouterr().err


def test_a_mirrored_stack_that_still_names_an_internet_source_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make check` walks the render of a stack with mirrors (tools/mirror/sources.py), as the
    airgap tests do for the example: a user's stack that still reaches the internet is caught."""
    airgap = (PROJECT / "Pulumi.airgap.yaml").read_text()
    _stack(tmp_path, "airgap", airgap)
    assert main(["--stack", "airgap", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    # The office left on the internet: its GPU setup fetches NVIDIA's repository.
    doc = yaml.safe_load(airgap)
    doc["config"]["hybrid-ai:sites"][1]["mirrors"] = {}
    _stack(tmp_path, "airgap", yaml.safe_dump(doc))
    assert main(["--stack", "airgap", "--dir", str(tmp_path), "--out", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert "check: internet-source: hosts/ws-1/ws-1-bootstrap-gpu-setup" in err and "nvidia.github.io" in err, err


def test_a_violation_names_its_resource_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(PROJECT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"images-pinned": {"requireImageDigest": True}}))
    assert main(["--stack", "dev", "--dir", str(tmp_path), "--out", str(tmp_path / "out"), "--policy-config", str(config)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("check: images-pinned: ")]
    assert lines, "requireImageDigest refuses the dev stack's tags"
    assert not [line for line in lines if re.match(r"check: images-pinned: ([\w-]+): \1: ", line)], lines
