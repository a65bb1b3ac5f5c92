"""The verification fails loudly unless the API server runs with RBAC,Node and NodeRestriction:
its args (what cluster-agent's /configure could rewrite) and, at runtime, a kubelet identity
refused another node's labels and its own protected ones (the stand-in kubectl answers as
kube-apiserver 1.32 with or without NodeRestriction)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.kit.kube import GPU_CAPACITY_LABEL, VPN_ADDRESS_LABEL
from tests.support.cluster_scripts import CP
from tests.support.cluster_stubs import ClusterHost

VERIFY = {"WAIT_S": "10", "VPN_LABEL": VPN_ADDRESS_LABEL, "CAPACITY_LABEL": GPU_CAPACITY_LABEL}
ARGS = "--advertise-address=100.64.0.2\n--authorization-mode=RBAC,Node\n--enable-admission-plugins=EventRateLimit,NodeRestriction\n"


def installed(tmp_path: Path) -> ClusterHost:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    cp.add_node("receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    return cp


def test_an_installed_control_plane_passes_and_the_kubelet_checks_ran(tmp_path: Path) -> None:
    cp = installed(tmp_path)
    args = (cp.snap_data / "args/kube-apiserver").read_text().splitlines()
    assert "--authorization-mode=RBAC,Node" in args
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 0, result.stderr
    labels = [c for c in cp.calls() if c.startswith("microk8s kubectl label")]
    assert any("label node receipt hybrid-ai-verify=node-restriction" in c and "--as=system:node:ws-1" in c for c in labels), labels
    assert any(f"label node ws-1 {VPN_ADDRESS_LABEL.rsplit('/', 1)[0]}/location=cloud" in c and "--dry-run=server" in c for c in labels)


@pytest.mark.parametrize(("args", "message"), [
    (ARGS.replace(",NodeRestriction", ""), "lacks NodeRestriction"),
    (ARGS.replace("RBAC,Node", "AlwaysAllow"), "--authorization-mode=AlwaysAllow, not RBAC,Node"),
    (ARGS.replace("--authorization-mode=RBAC,Node\n", ""), "AlwaysAllow (its default)"),
    (ARGS + "--disable-admission-plugins=NodeRestriction\n", "turns NodeRestriction off"),
])
def test_verify_fails_on_the_api_servers_args(tmp_path: Path, args: str, message: str) -> None:
    cp = installed(tmp_path)
    (cp.snap_data / "args/kube-apiserver").write_text(args)
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "not as the program set it" in result.stderr


def test_verify_fails_when_the_running_api_server_lacks_node_restriction(tmp_path: Path) -> None:
    cp = installed(tmp_path)
    (cp.state / "kube-apiserver-running").write_text(ARGS.replace(",NodeRestriction", ""))  # started before it was added
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1, result.stderr
    assert "NodeRestriction is not enforced: the kubelet identity of ws-1 may label node receipt" in result.stderr
    assert "may set hybrid-ai.node-restriction.kubernetes.io/location on its own node" in result.stderr
    (cp.state / "kube-apiserver-running").unlink()
    assert cp.run("verify-cluster.sh", **VERIFY).returncode == 0
