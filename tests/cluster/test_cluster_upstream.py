"""MicroK8s install steps that depend on what MicroK8s 1.32, its addons and the NVIDIA toolkit
really do (docs/upstream.md): the containerd runtime `nvidia`, the launch configuration that
replaces the bundled one, the control plane's addons, and certificate SANs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.cluster.microk8s import MicroK8sClusterArgs, launch_config
from components.cluster.node import ClusterNode
from tests.support.cluster_scripts import CP, WORKER, sleeps
from tests.support.cluster_stubs import APISERVER_DEFAULT_ARGS, ClusterHost

NVIDIA_SECTION = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]'


def test_gpu_install_adds_the_nvidia_runtime_next_to_the_shipped_nvidia_container_runtime(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path)
    template = h.snap_data / "args/containerd-template.toml"
    first = h.run("microk8s-install.sh", **WORKER)
    assert first.returncode == 0, first.stderr
    configure = [c for c in h.calls() if c.startswith("nvidia-ctk runtime configure --runtime=containerd")]
    assert configure == [f"nvidia-ctk runtime configure --runtime=containerd --config={template} --drop-in-config="]
    text = template.read_text()
    # The handler the RuntimeClass names, in the template MicroK8s renders (not a drop-in it never reads).
    assert NVIDIA_SECTION in text.splitlines() and "runtimes.nvidia-container-runtime]" in text
    assert "imports" not in text and not (h.state / "etc").exists()
    assert "snap restart microk8s.daemon-containerd" in h.state_changes()
    # Workers leave the API server's args as installed.
    assert (h.snap_data / "args/kube-apiserver").read_text() == APISERVER_DEFAULT_ARGS
    assert not [c for c in h.calls() if "cni.yaml" in c]
    assert h.run("microk8s-install.sh", **WORKER).returncode == 0
    assert h.state_changes() == []


def test_launch_config_carries_what_the_bundled_default_did_and_the_addons(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    kubelet = (cp.snap_data / "args/kubelet").read_text().splitlines()
    assert "--cluster-dns=10.152.183.10" in kubelet and "--cluster-domain=cluster.local" in kubelet
    enabled = cp.snap_data.parent / "enabled-addons"
    assert sorted(p.name for p in enabled.iterdir()) == ["dns", "hostpath-storage", "metrics-server", "rbac"]
    assert (enabled / "dns").read_text() == "/etc/resolv.conf 10.152.183.10"
    worker = ClusterHost(tmp_path / "w")
    assert worker.run("microk8s-install.sh", **WORKER).returncode == 0
    assert "--cluster-dns=10.152.183.10" in (worker.snap_data / "args/kubelet").read_text().splitlines()
    assert not (worker.snap_data.parent / "enabled-addons").exists() or not list((worker.snap_data.parent / "enabled-addons").iterdir())


def test_launch_config_is_yaml_of_the_cluster_agent_schema_with_dns_in_the_service_network() -> None:
    node = ClusterNode(name="cp", target=None, vpn_address="100.64.0.2", control_plane=True)  # type: ignore[arg-type]
    args = MicroK8sClusterArgs(nodes=[], channel="1.32/stable", cni_mtu=1330, service_cidr="10.96.0.0/16")
    config = yaml.safe_load(launch_config(node, args, ["100.64.0.2", "api.example.com"], seed=True))
    assert config["version"] == "0.2.0"
    assert config["extraKubeletArgs"]["--cluster-dns"] == "10.96.0.10"
    assert config["addons"][1] == {"name": "dns", "args": ["/etc/resolv.conf", "10.96.0.10"]}
    assert [a["name"] for a in config["addons"]] == ["rbac", "dns", "metrics-server", "hostpath-storage"]
    assert config["extraSANs"] == ["100.64.0.2", "api.example.com"]
    assert set(config) <= {"version", "extraSANs", "extraKubeletArgs", "extraKubeAPIServerArgs", "extraCNIEnv", "addons"}


def test_existing_control_plane_gets_missing_addons_and_dns_args_once(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    # A control plane installed by an older version: no addons, no cluster DNS on the kubelet.
    for addon in (cp.snap_data.parent / "enabled-addons").iterdir():
        addon.unlink()
    kubelet = cp.snap_data / "args/kubelet"
    kubelet.write_text("".join(line + "\n" for line in kubelet.read_text().splitlines() if "cluster-d" not in line))
    result = cp.run("microk8s-install.sh", **CP)
    assert result.returncode == 0, result.stderr
    assert cp.state_changes() == [
        "snap restart microk8s.daemon-kubelite",
        "microk8s enable rbac",
        "microk8s enable dns /etc/resolv.conf 10.152.183.10",
        "microk8s enable metrics-server",
        "microk8s enable hostpath-storage",
    ]
    assert cp.run("microk8s-install.sh", **CP).returncode == 0 and cp.state_changes() == []


def test_control_plane_api_server_authorizes_with_rbac_and_node_not_always_allow(tmp_path: Path) -> None:
    # default-args/kube-apiserver @ v1.32: --authorization-mode=AlwaysAllow; the rbac addon
    # (core addons 2d6e317) sets RBAC,Node, on a fresh install and on an existing control plane.
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    modes = [a for a in (cp.snap_data / "args/kube-apiserver").read_text().splitlines() if a.startswith("--authorization-mode=")]
    assert modes == ["--authorization-mode=RBAC,Node"]
    (cp.snap_data.parent / "enabled-addons/rbac").unlink()
    (cp.snap_data / "args/kube-apiserver").write_text("--authorization-mode=AlwaysAllow\n")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    assert "microk8s enable rbac" in cp.state_changes()
    modes = [a for a in (cp.snap_data / "args/kube-apiserver").read_text().splitlines() if a.startswith("--authorization-mode=")]
    assert modes == ["--authorization-mode=RBAC,Node"]


def test_addons_wait_for_cluster_agent_to_apply_the_launch_config_within_a_bound(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    (cp.snap_common / "etc/launcher/install.yaml").write_text("version: 0.2.0\n")  # not applied yet
    result = cp.run("microk8s-install.sh", **CP)
    assert result.returncode == 1
    assert "cluster-agent has not applied the launch configuration after 10 minutes" in result.stderr
    assert len(sleeps(cp)) == 119 and not [c for c in cp.state_changes() if " enable " in c]


@pytest.mark.parametrize(("san", "line", "entry"), [("203.0.113.50", "IP.4 = 203.0.113.50", "IP Address:203.0.113.50"),
                                                    ("api.example.com", "DNS.5 = api.example.com", "DNS:api.example.com")])
def test_new_san_on_an_existing_control_plane_refreshes_the_server_certificate_once(tmp_path: Path, san: str, line: str, entry: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    more = {**CP, "EXTRA_SANS": f"203.0.113.11 {san}"}
    result = cp.run("microk8s-install.sh", **more)
    assert result.returncode == 0, result.stderr
    assert line in (cp.snap_data / "certs/csr.conf.template").read_text().splitlines()
    assert cp.state_changes() == ["microk8s refresh-certs --cert server.crt"]
    assert entry in (cp.snap_data / "certs/server.crt").read_text()
    assert cp.run("microk8s-install.sh", **more).returncode == 0 and cp.state_changes() == []


def test_a_template_with_the_san_but_a_stale_certificate_is_still_refreshed(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    crt = cp.snap_data / "certs/server.crt"
    crt.write_text(crt.read_text().replace(", IP Address:203.0.113.11", ""))  # a run that died before the refresh
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    assert cp.state_changes() == ["microk8s refresh-certs --cert server.crt"]
