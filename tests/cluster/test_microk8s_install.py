"""The MicroK8s install and uninstall scripts under recording stubs: calls and their order, a
second run that changes nothing, bounded retries and clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.cluster_scripts import CP, WORKER, sleeps
from tests.support.cluster_stubs import ClusterHost


def test_control_plane_install_pins_everything_to_the_vpn(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = h.run("microk8s-install.sh", **CP)
    assert result.returncode == 0, result.stderr
    # The launch configuration set every pin at install: no restart, no certificate refresh.
    assert h.state_changes() == [
        "snap install microk8s --classic --channel=1.32/stable",
        f"microk8s kubectl apply -f {h.snap_data}/args/cni-network/cni.yaml",
        "microk8s kubectl -n kube-system rollout restart daemonset/calico-node",
    ]
    launch = yaml.safe_load((h.snap_common / ".microk8s.yaml").read_text())
    assert launch["extraKubeletArgs"] == {"--node-ip": "100.64.0.2", "--runtime-request-timeout": "30m",
                                          "--cluster-domain": "cluster.local", "--cluster-dns": "10.152.183.10"}
    assert launch["extraKubeAPIServerArgs"] == {"--advertise-address": "100.64.0.2", "--authorization-mode": "RBAC,Node", "--enable-admission-plugins": "EventRateLimit,NodeRestriction"}
    assert launch["extraSANs"] == ["100.64.0.2", "203.0.113.11"]
    assert launch["extraCNIEnv"] == {"IPv4_CLUSTER_CIDR": "10.1.0.0/16", "IPv4_SERVICE_CIDR": "10.152.183.0/24"}
    assert "--node-ip=100.64.0.2" in (h.snap_data / "args/kubelet").read_text().splitlines()
    assert "--advertise-address=100.64.0.2" in (h.snap_data / "args/kube-apiserver").read_text().splitlines()
    template = (h.snap_data / "certs/csr.conf.template").read_text()
    assert "IP.2 = 100.64.0.2" in template and "IP.3 = 203.0.113.11" in template
    assert "IP Address:203.0.113.11" in (h.snap_data / "certs/server.crt").read_text()
    cni = (h.snap_data / "args/cni-network/cni.yaml").read_text()
    assert 'value: "interface=wg0"' in cni and 'veth_mtu: "1330"' in cni


def test_install_twice_changes_nothing(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert h.run("microk8s-install.sh", **CP).returncode == 0
    again = h.run("microk8s-install.sh", **CP)
    assert again.returncode == 0, again.stderr
    assert h.state_changes() == []
    assert again.stdout.strip() == "changed=none"


def test_snap_network_errors_are_retried_then_reported(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (h.state / "snap-fail").write_text("2")
    assert h.run("microk8s-install.sh", **CP).returncode == 0
    assert sleeps(h) == ["sleep 5", "sleep 10"]
    h2 = ClusterHost(tmp_path / "b", "receipt", "100.64.0.2")
    (h2.state / "snap-fail").write_text("always")
    result = h2.run("microk8s-install.sh", **CP)
    assert result.returncode == 1
    assert len(sleeps(h2)) == 4
    assert "ERROR: snap install microk8s (1.32/stable) failed" in result.stderr


def test_install_refuses_a_host_whose_name_differs(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "workstation-7")
    result = h.run("microk8s-install.sh", **WORKER)
    assert result.returncode == 1
    assert "named 'workstation-7', the config says 'ws-1'" in result.stderr
    assert h.state_changes() == []


def test_install_waits_for_the_vpn(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, vpn_ip=None)
    result = h.run("microk8s-install.sh", **WORKER)
    assert result.returncode == 1 and "100.64.1.1 is not on wg0 after 2 minutes; the VPN step must run first" in result.stderr
    assert len(sleeps(h)) == 23 and h.state_changes() == []


def test_gpu_host_without_nvidia_ctk_fails_before_installing(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path)
    (h.bin / "nvidia-ctk").unlink()  # a driver but no toolkit (nvidia.installToolkit: false)
    result = h.run("microk8s-install.sh", **WORKER)
    assert result.returncode == 1 and h.state_changes() == []
    assert "GPU host without nvidia-ctk" in result.stderr and "nvidia.installToolkit: true" in result.stderr
    assert h.run("microk8s-install.sh", **{**WORKER, "GPU": "false"}).returncode == 0  # a CPU node needs none


@pytest.mark.parametrize("leftover", ["etc_launch", "root_launch"])
def test_a_leftover_launch_config_read_before_ours_fails_before_installing(tmp_path: Path, leftover: str) -> None:
    h = ClusterHost(tmp_path)
    path: Path = getattr(h, leftover)
    path.parent.mkdir(parents=True)
    path.write_text("version: 0.1.0\nextraCNIEnv:\n  IPv4_CLUSTER_CIDR: 10.99.0.0/16\n")
    result = h.run("microk8s-install.sh", **WORKER)
    assert result.returncode == 1 and h.state_changes() == []
    assert f"{path} exists and MicroK8s' install hook would use it instead" in result.stderr and "remove it" in result.stderr
    path.write_text(WORKER["LAUNCH_CONFIG"] + "\n")  # the same content as ours is harmless
    assert h.run("microk8s-install.sh", **WORKER).returncode == 0


def test_a_channel_change_is_never_refreshed_by_the_install_but_left_to_the_roll(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert h.run("microk8s-install.sh", **CP).returncode == 0
    result = h.run("microk8s-install.sh", **{**CP, "CHANNEL": "1.33/stable"})
    assert result.returncode == 1 and h.state_changes() == []
    assert "set cluster.upgrade.fromChannel: 1.32/stable to roll the upgrade" in result.stderr
    rolled = h.run("microk8s-install.sh", **{**CP, "CHANNEL": "1.33/stable", "UPGRADE_FROM": "1.32/stable"})
    assert rolled.returncode == 0 and h.state_changes() == [] and rolled.stdout.strip() == "changed=none"


def test_uninstall_removes_the_snap_and_launch_config(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert h.run("microk8s-install.sh", **CP).returncode == 0
    assert h.run("microk8s-uninstall.sh").returncode == 0
    assert h.state_changes() == ["snap remove microk8s --purge"]
    assert not (h.snap_common / ".microk8s.yaml").exists()
    assert h.run("microk8s-uninstall.sh").returncode == 0 and h.state_changes() == []


def test_a_node_added_during_a_roll_starts_on_the_channel_the_cluster_still_runs(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "ws-3", "100.64.1.3")
    fresh = h.run("microk8s-install.sh", **{**WORKER, "HOST_NAME": "ws-3", "NODE_IP": "100.64.1.3",
                                            "CHANNEL": "1.33/stable", "UPGRADE_FROM": "1.32/stable"})
    assert fresh.returncode == 0, fresh.stderr
    assert "snap install microk8s --classic --channel=1.32/stable" in h.state_changes()
