"""Fixtures of the Kubernetes lab: one control plane and one chart mirror for the session, with
a kwok node for every host of the dev stack and of the llm lab stack (`llm_lab_config`); the dev
stack's Kubernetes layer applied to it (preview, then up) for the tests that need it. The dev
module destroys its stack at its end; the llm module then applies its own on the same API
server (one control plane start for both)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from tests.support.chart_mirror import Mirror, serve
from tests.support.helpers import PROJECT, stack_config, unavailable
from tests.support.kube import KubeStack, control_plane, with_mirror
from tools.lab.kube import CRDS, ControlPlane, missing_requirements


def llm_lab_config() -> dict[str, Any]:
    """The llm stack with a GPU of each sharing mode: ws-1's rtx-3090 under MPS, ws-2's
    time-sliced as in Pulumi.llm.yaml, and ws-3 with one whole GPU (a profile of one replica) for
    `coder`, which asks for a whole GPU: the shared models' affinity keeps them off it."""
    raw = copy.deepcopy(stack_config("llm"))
    raw["timeSlicing"]["profiles"] += [{"name": "rtx-3090-mps", "replicas": 4, "sharing": "mps", "memory": "24Gi"},
                                       {"name": "rtx-a6000", "replicas": 1, "memory": "48Gi"}]
    hosts = raw["hosts"]
    next(h for h in hosts if h["name"] == "ws-1")["gpu"]["profile"] = "rtx-3090-mps"
    ws2 = next(h for h in hosts if h["name"] == "ws-2")
    hosts.append(copy.deepcopy(ws2) | {"name": "ws-3", "existing": {"address": "198.51.100.23"}, "vpnAddress": "100.64.1.3",
                                       "gpu": {"model": "rtx-a6000", "count": 1, "profile": "rtx-a6000"}})
    for m in raw["models"]:
        m.pop("shmSize", None)  # the device plugin mounts its own /dev/shm on MPS GPUs
    chat = next(m for m in raw["models"] if m["name"] == "chat")
    raw["models"].append({"name": "coder", "kind": "vllm", "placement": "gpu", "port": 8000, "memory": "16Gi", "gpuMemory": "40Gi",
                          "exclusiveGpu": True, "vllm": chat["vllm"] | {"servedModelName": "coder", "maxModelLen": 16384}})
    return raw


@pytest.fixture(scope="session")
def plane() -> Iterator[ControlPlane]:
    why = missing_requirements()
    if why:
        unavailable(f"the Kubernetes lab cannot run here: {why}")
    cp = control_plane(stack_config("dev"), llm_lab_config()).up()
    print(f"\nlab control plane: API server ready in {cp.timings['apiserver']:.1f} s, "
          f"{len(cp.nodes)} kwok nodes Ready in {cp.timings['ready']:.1f} s", flush=True)
    try:
        yield cp
    finally:
        pids = [p.pid for p in cp.processes.values()]
        cp.down()
        # Nothing left behind: no process, no namespace, no folder.
        assert not [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
        assert cp.ns not in os.popen("ip netns list").read()
        assert not cp.root.exists()


@pytest.fixture(scope="session")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    if not CRDS.is_dir():
        unavailable(f"no generated CRDs in {CRDS}: run `make engine`")
    with serve(tmp_path_factory.mktemp("mirror"), CRDS) as m:
        yield m


def changes(result: Any) -> dict[str, int]:
    """An operation's resource changes by kind (create, same, update, delete, ...)."""
    return {str(k): int(v) for k, v in (result.summary.resource_changes or {}).items()}


@dataclass
class Deployed:
    kube: KubeStack
    base: dict[str, Any]
    """The dev stack's config with the mirror as its sources."""
    created: int = 0
    """Resources the first `up` created (the stack included)."""
    destroyed: bool = False
    preview: str = ""
    """The first preview's `Resources:` summary."""
    preview_error: str | None = None

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self.base)

    def get(self, *args: str) -> Any:
        return json.loads(self.kube.plane.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def deployed(plane: ControlPlane, mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    kube = KubeStack(tmp_path_factory.mktemp("kube-stack"), plane)
    state = Deployed(kube, with_mirror(stack_config("dev"), mirror))
    kube.configure(state.base)
    try:
        try:
            state.preview = "\n".join(kube.preview())
        except auto.errors.CommandError as err:  # kept for its own test; the up goes on
            state.preview_error = "\n".join(line for line in str(err).splitlines() if "error:" in line)
            print(f"\n$ pulumi preview: failed\n{state.preview_error}", flush=True)
        assert kube.urns() == set(), "preview changed the state"
        assert plane.kubectl("get", "namespace", "hybrid-ai", check=False).returncode != 0, "preview created the namespace"
        start = time.monotonic()
        result, _ = kube.up()
        state.created = changes(result).get("create", 0)
        print(f"first up: {state.created} created in {time.monotonic() - start:.1f} s", flush=True)
        yield state
    finally:
        if not state.destroyed and kube.urns():
            kube.destroy("destroy (clean-up)")
        kube.stack.workspace.remove_stack(kube.stack.name, force=True)


def ours(d: Deployed) -> list[str]:
    return [n["metadata"]["name"] for n in d.get("namespaces", "-l", "app.kubernetes.io/part-of=hybrid-ai")["items"]]


def _render(stack: str, out: Path) -> list[dict[str, Any]]:
    subprocess.run([sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)], cwd=PROJECT, check=True,
                   capture_output=True, timeout=300)
    docs = []
    for file in sorted((out / "artifacts" / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(file.read_text()) if d and "apiVersion" in d and "kind" in d]
    return docs


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    return {s: _render(s, tmp_path_factory.mktemp(f"render-{s}")) for s in ("prod", "ha")}


def trusted_accounts() -> set[str]:
    """Service accounts docs/security.md lists as trusted controllers (allowed to read Secrets)."""
    return set(re.findall(r"system:serviceaccount:[a-z0-9-]+:[a-z0-9-]+", (PROJECT / "docs" / "security.md").read_text()))
