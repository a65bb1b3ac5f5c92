"""`make engine`: the pins of the wrapper modules under engine/, the binaries built from them
and the CRD check (docs/engine.md). The tests that need Go or the built binaries are engine
tests (run by `make e2e-engine`, after `make engine`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import PROJECT, unavailable

BIN = PROJECT / ".engine" / "bin"
CRDS = PROJECT / ".engine" / "crds"
GO = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)


def test_the_sdk_asks_for_the_provider_the_engine_builds() -> None:
    """The SDK makes users' engine fetch the provider of its own version: the lab must run that."""
    sdk = re.search(r"^pulumi-kubernetes==(\S+)$", (PROJECT / "requirements.txt").read_text(), re.M)
    built = re.search(r"^PULUMI_KUBERNETES_VERSION := (\S+)$", (PROJECT / "Makefile").read_text(), re.M)
    assert sdk and built, "requirements.txt or the Makefile no longer pins pulumi-kubernetes"
    assert sdk.group(1) == built.group(1)


def _go(directory: str, *args: str) -> str:
    if GO is None:
        unavailable("Go is not installed")
    done = subprocess.run([GO, *args], cwd=PROJECT / "engine" / directory, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _replaces(go_mod: str) -> dict[str, str]:
    """A go.mod's replace directives: old module path -> what replaces it."""
    found, block = {}, False
    for raw in go_mod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line == "replace (":
            block = True
            continue
        if block and line == ")":
            block = False
            continue
        if block or line.startswith("replace "):
            old, _, new = line.removeprefix("replace ").partition("=>")
            if new:
                found[old.split()[0]] = new.strip()
    return found


@pytest.mark.parametrize(("directory", "module", "release"), [
    # the staging modules published from k8s.io/kubernetes v1.32.13 (endpointslice: v0.32.12)
    ("kubernetes", "k8s.io/kubernetes", r"v0\.32\.1[23]"),
    ("pulumi-kubernetes", "github.com/pulumi/pulumi-kubernetes/provider/v4", r"v4\.25\.0"),
    ("etcd", "go.etcd.io/etcd/server/v3", r"v(3\.5|2\.305)\.36"),
])
@pytest.mark.e2e
@pytest.mark.engine
def test_each_module_upstream_takes_from_its_own_repository_is_pinned_to_its_release(
        directory: str, module: str, release: str) -> None:
    """Upstream's replaces apply only in its own repository: every module it replaces by a path
    (its own tree at the same commit) must be pinned here to what that release published."""
    upstream_mod = Path(_go(directory, "list", "-mod=readonly", "-m", "-f", "{{.GoMod}}", module).strip())
    by_path = {old for old, new in _replaces(upstream_mod.read_text()).items() if new.startswith(".")}
    by_path.discard("go.etcd.io/etcd")  # etcd's guards against a forbidden import, not a module it uses
    assert by_path, f"{module}'s go.mod has no replace by path: check this test's parsing"
    ours = json.loads(_go(directory, "mod", "edit", "-json"))
    replaced = {r["Old"]["Path"]: r["New"] for r in ours.get("Replace") or []}
    required = {r["Path"]: r["Version"] for r in ours["Require"]}
    needed = by_path & required.keys()
    assert needed, f"engine/{directory}/go.mod requires none of {sorted(by_path)}"
    version = {path: replaced.get(path, {}).get("Version", required[path] if path not in replaced else "")
               for path in needed}
    other = {path: v for path, v in version.items() if not re.fullmatch(release, v)}
    assert not other, f"engine/{directory}/go.mod pins these to another release than {module}'s: {other}"


def _run(binary: str, *args: str, env: dict[str, str] | None = None) -> str:
    path = BIN / binary
    if not path.exists():
        unavailable(f"{path} is not built: run `make engine`")
    done = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.e2e
@pytest.mark.engine
def test_the_kubernetes_binaries_carry_the_pinned_version_stamps() -> None:
    """kubectl compares its version with the server's: both must be stamped, parseable."""
    client = json.loads(_run("kubectl", "version", "--client", "-o", "json"))["clientVersion"]
    assert (client["gitVersion"], client["major"], client["minor"], client["gitTreeState"]) == \
        ("v1.32.13", "1", "32", "clean")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", client["buildDate"])
    for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert _run(binary, "--version").strip() == "Kubernetes v1.32.13"


@pytest.mark.e2e
@pytest.mark.engine
def test_etcd_and_kwok_are_the_pinned_versions() -> None:
    assert "etcd Version: 3.5.36" in _run("etcd", "--version")
    assert "0.8.0" in _run("kwok", "--version")


@pytest.mark.e2e
@pytest.mark.engine
def test_the_provider_serves_the_schema_generated_at_build_time(tmp_path: Path) -> None:
    """The embedded schema (made in the build from the module's schema.json) names the version."""
    provider = BIN / "pulumi-resource-kubernetes"
    if not provider.exists():
        unavailable(f"{provider} is not built: run `make engine`")
    out = _run("pulumi", "package", "get-schema", str(provider),
               env={"PULUMI_HOME": str(tmp_path), "PULUMI_SKIP_UPDATE_CHECK": "true"})
    schema = json.loads(out[out.index("{"):])
    assert (schema["name"], schema["version"]) == ("kubernetes", "4.25.0")
    assert "kubernetes:apps/v1:Deployment" in schema["resources"]


def _check(generated: Path, out: Path) -> subprocess.CompletedProcess[str]:
    reference = _go("crds/gateway-api", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
    return subprocess.run(
        [sys.executable, str(PROJECT / "engine" / "crds" / "check.py"),
         str(generated), f"{reference.strip()}/config/crd/standard", "{group}_{plural}.yaml", str(out)],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.e2e
@pytest.mark.engine
def test_the_crd_check_refuses_what_differs_from_upstreams_crd(tmp_path: Path) -> None:
    """A generated CRD passes only when it equals the release's own: an HTTPRoute whose v1beta1
    is not served, or that lacks a standard field, fails and is named."""
    ours = CRDS / "gateway-api" / "gateway.networking.k8s.io_httproutes.yaml"
    if not ours.exists():
        unavailable(f"{ours} is not generated: run `make engine`")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    crd = yaml.safe_load(ours.read_text())
    (tmp_path / "in" / ours.name).write_text(yaml.safe_dump(crd))
    passed = _check(tmp_path / "in", tmp_path / "out")
    assert passed.returncode == 0, passed.stderr
    assert "httproutes.gateway.networking.k8s.io matches upstream's" in passed.stdout

    served = {v["name"]: v for v in crd["spec"]["versions"]}
    served["v1beta1"]["served"] = False
    rule = served["v1"]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["rules"]
    del rule["items"]["properties"]["timeouts"]
    (tmp_path / "in" / ours.name).write_text(yaml.safe_dump(crd))
    failed = _check(tmp_path / "in", tmp_path / "out")
    assert failed.returncode == 1
    assert "spec.versions[1].served: False != upstream's True" in failed.stderr
    assert "rules.items.properties.timeouts: only upstream's" in failed.stderr


@pytest.mark.parametrize("group", ["gateway-api", "cert-manager", "prometheus-operator"])
@pytest.mark.e2e
@pytest.mark.engine
def test_the_generated_crds_are_upstreams(group: str, tmp_path: Path) -> None:
    """Each CRD in .engine/crds equals the one upstream publishes for the pinned version."""
    ours = sorted((CRDS / group).glob("*.yaml"))
    if not ours:
        unavailable(f"{CRDS / group} holds no CRD: run `make engine`")
    if GO is None:
        unavailable("Go is not installed")
    where = subprocess.run(["bash", "generate.sh", "--reference"], cwd=PROJECT / "engine" / "crds" / group,
                           capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, "PATH": f"{os.environ['PATH']}:{Path(GO).parent}"})
    assert where.returncode == 0, where.stderr
    reference, pattern = where.stdout.split()
    done = subprocess.run([sys.executable, str(PROJECT / "engine" / "crds" / "check.py"), str(CRDS / group),
                           reference, pattern, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("matches upstream's") == len(ours), done.stdout
