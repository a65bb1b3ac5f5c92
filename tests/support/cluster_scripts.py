"""Parameters and helpers shared by the tests of the MicroK8s and NVIDIA host scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from components.cluster.microk8s import CONTROL_PLANE_ADDONS, MicroK8sClusterArgs, launch_config
from components.cluster.node import ClusterNode
from components.kit.shell import compose
from tests.support.cluster_stubs import ClusterHost
from tests.support.join_stub import issue_token


def _launch(name: str, ip: str, control_plane: bool, public: str | None = None) -> str:
    node = ClusterNode(name=name, target=None, vpn_address=ip, control_plane=control_plane)  # type: ignore[arg-type]
    sans = [ip, public] if control_plane and public else [ip]
    return launch_config(node, MicroK8sClusterArgs(nodes=[], channel="1.32/stable", cni_mtu=1330), sans, seed=control_plane)


CP = {"HOST_NAME": "receipt", "CHANNEL": "1.32/stable", "NODE_IP": "100.64.0.2", "CNI_MTU": "1330",
      "ROLE": "control-plane", "EXTRA_SANS": "203.0.113.11", "ADDONS": " ".join(CONTROL_PLANE_ADDONS),
      "LAUNCH_CONFIG": _launch("receipt", "100.64.0.2", True, "203.0.113.11")}
WORKER = {"HOST_NAME": "ws-1", "CHANNEL": "1.32/stable", "NODE_IP": "100.64.1.1", "CNI_MTU": "1330", "ROLE": "worker", "GPU": "true",
          "LAUNCH_CONFIG": _launch("ws-1", "100.64.1.1", False)}


def sleeps(h: ClusterHost) -> list[str]:
    return [c for c in h.calls() if c.startswith("sleep")]


def start(host: ClusterHost, script: str, stdin: str = "", **params: str) -> subprocess.Popen[str]:
    """Like `host.run`, but returns at once with the script running (to watch it from outside)."""
    (host.state / "calls.log").write_text("")
    params = {"SNAP_DATA": str(host.snap_data), "SNAP_COMMON": str(host.snap_common), **params}
    env = {"PATH": f"{host.bin}:/usr/bin:/bin", "STATE": str(host.state), "HOME": str(host.root), **host.env}
    proc = subprocess.Popen(["bash", "-c", compose(script, params), script], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    return proc


def joined_worker(tmp_path: Path, seed: ClusterHost | None = None) -> ClusterHost:
    """ws-1 installed (joined only once its join step runs), asking `seed` when it joins."""
    h = ClusterHost(tmp_path, seed=seed)
    assert h.run("microk8s-install.sh", **WORKER).returncode == 0
    return h


def seed_and_token(tmp_path: Path) -> tuple[ClusterHost, str]:
    """The seed, installed, and a token its `microk8s add-node --token-ttl 3600` issued."""
    seed = ClusterHost(tmp_path / "seed", "receipt", "100.64.0.2")
    assert seed.run("microk8s-install.sh", **CP).returncode == 0
    return seed, issue_token(seed.snap_data)
