"""GPU and MicroK8s host scripts under recording stubs: calls and their order, a second run
that changes nothing, bounded retries, clear failures, and no token in any output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from components.cluster.microk8s import CONTROL_PLANE_ADDONS, ClusterNode, MicroK8sClusterArgs, launch_config
from components.cluster.nvidia import TOOLKIT_VERSION
from tests.support.cluster_stubs import ClusterHost

TOKEN = "0123456789abcdef0123456789abcdef"


def _launch(name: str, ip: str, control_plane: bool, public: str | None = None) -> str:
    node = ClusterNode(name=name, target=None, vpn_address=ip, control_plane=control_plane)  # type: ignore[arg-type]
    sans = [ip, public] if control_plane and public else [ip]
    return launch_config(node, MicroK8sClusterArgs(nodes=[], channel="1.32/stable", cni_mtu=1330), sans, seed=control_plane)


CP = {"HOST_NAME": "receipt", "CHANNEL": "1.32/stable", "NODE_IP": "100.64.0.2", "CNI_MTU": "1330",
      "ROLE": "control-plane", "EXTRA_SANS": "203.0.113.11", "ADDONS": " ".join(CONTROL_PLANE_ADDONS),
      "LAUNCH_CONFIG": _launch("receipt", "100.64.0.2", True, "203.0.113.11")}
WORKER = {"HOST_NAME": "ws-1", "CHANNEL": "1.32/stable", "NODE_IP": "100.64.1.1", "CNI_MTU": "1330", "ROLE": "worker", "GPU": "true",
          "LAUNCH_CONFIG": _launch("ws-1", "100.64.1.1", False)}
JOIN = {"HOST_NAME": "ws-1", "CONTROL_PLANE": "100.64.0.2", "NODE_IP": "100.64.1.1", "WORKER": "true"}


def sleeps(h: ClusterHost) -> list[str]:
    return [c for c in h.calls() if c.startswith("sleep")]


# --- MicroK8s install -------------------------------------------------------------------

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
    assert launch["extraKubeAPIServerArgs"] == {"--advertise-address": "100.64.0.2"}
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


# --- Joining ----------------------------------------------------------------------------

def joined_worker(tmp_path: Path) -> ClusterHost:
    h = ClusterHost(tmp_path)
    assert h.run("microk8s-install.sh", **WORKER).returncode == 0
    return h


def test_register_has_microk8s_generate_a_token_for_this_node_with_its_lifetime(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1", TOKEN_TTL_S="3600")
    assert result.returncode == 0, result.stderr
    lock = [c for c in cp.calls() if c.startswith("flock")]
    assert len(lock) == 1 and lock[0].startswith("flock -w 120 ")  # on a file descriptor
    assert cp.state_changes()[-1] == "microk8s add-node --token-ttl 3600 --format token"
    token = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert token not in result.stderr
    tokens = (cp.snap_data / "credentials/cluster-tokens.txt").read_text().splitlines()
    assert [t.split("|")[0] for t in tokens] == [token]
    # Another node gets a token of its own.
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", other) and other != token


@pytest.mark.parametrize("output", ["not-a-token", "0123456789abcdef0123456789abcdef\nmicrok8s join 1.2.3.4:25000/x",
                                    "0123456789ABCDEF0123456789ABCDEF", "x" * 5000])
def test_register_passes_on_only_a_well_formed_token(tmp_path: Path, output: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (cp.state / "add-node-output").write_text(output + "\n")
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 1 and result.stdout == ""
    assert "hybrid-ai[receipt] register: ERROR: microk8s add-node printed something other than one 32-hex-character token for ws-1" in result.stderr
    assert output.splitlines()[0] not in result.stderr


def test_register_gives_up_on_a_lock_held_too_long_without_registering(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (cp.state / "lock-busy").touch()
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1", LOCK_WAIT_S="30")
    assert result.returncode == 1 and result.stdout == ""
    assert "another registration held the add-node lock for 30s" in result.stderr
    assert [c for c in cp.calls() if c.startswith("flock")] == [c for c in cp.calls() if c.startswith("flock -w 30 ")] != []
    assert not [c for c in cp.calls() if "add-node" in c]


def test_register_refuses_a_name_held_by_another_machine(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.9.9")
    result = cp.run("microk8s-register.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 1
    assert "a node named ws-1 with address 100.64.9.9 is already in the cluster" in result.stderr


def test_join_uses_the_vpn_and_pins_the_node_ip_back(tmp_path: Path) -> None:
    h = joined_worker(tmp_path)
    result = h.run("microk8s-join.sh", stdin=TOKEN + "\n", **JOIN)
    assert result.returncode == 0, result.stderr
    assert h.state_changes() == [f"microk8s join 100.64.0.2:25000/{TOKEN} --worker", "snap restart microk8s.daemon-kubelite"]
    assert "--node-ip=100.64.1.1" in (h.snap_data / "args/kubelet").read_text().splitlines()
    assert TOKEN not in result.stdout + result.stderr
    again = h.run("microk8s-join.sh", stdin=TOKEN + "\n", **JOIN)
    assert again.returncode == 0 and h.state_changes() == [] and again.stdout.strip() == "changed=none"


def test_join_rejects_a_malformed_token_without_echoing_it(tmp_path: Path) -> None:
    h = joined_worker(tmp_path)
    result = h.run("microk8s-join.sh", stdin="not-a-token-SECRETISH\n", **JOIN)
    assert result.returncode == 1
    assert "not 32 hex characters" in result.stderr and "SECRETISH" not in result.stderr
    assert h.state_changes() == []


def test_leave_then_remove_node_on_destroy(tmp_path: Path) -> None:
    h = joined_worker(tmp_path)
    assert h.run("microk8s-join.sh", stdin=TOKEN, **JOIN).returncode == 0
    assert h.run("microk8s-leave.sh").returncode == 0
    assert h.state_changes() == ["microk8s leave"]
    assert h.run("microk8s-leave.sh").returncode == 0 and h.state_changes() == []
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    assert cp.run("microk8s-drain.sh", NODE_NAME="ws-1").returncode == 0
    assert cp.state_changes() == ["microk8s kubectl drain ws-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s"]
    assert cp.run("microk8s-remove-node.sh", NODE_NAME="ws-1").returncode == 0
    assert cp.state_changes() == ["microk8s remove-node ws-1"]
    assert cp.run("microk8s-remove-node.sh", NODE_NAME="ws-1").returncode == 0 and cp.state_changes() == []


def test_node_ready_waits_within_a_bound_and_says_what_is_wrong(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "198.51.100.11")  # Ready, but on its LAN address
    result = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="30")
    assert result.returncode == 1
    assert "not Ready on 100.64.1.1 after 30s (Ready=True, InternalIP=198.51.100.11)" in result.stderr
    assert len(sleeps(cp)) == 5
    cp.add_node("ws-1", "100.64.1.1")
    ok = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert ok.returncode == 0 and ok.stdout.strip() == "node=ws-1"


def test_the_ready_step_removes_exactly_the_nodes_token_once_it_has_joined(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    mine = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1").stdout.strip()
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    tokens = cp.snap_data / "credentials/cluster-tokens.txt"
    with tokens.open("a") as f:  # a token without TTL and one that only starts like ours stay
        f.write(f"{mine[:16]}\n{mine}0|1\n")
    tokens.chmod(0o660)
    before = tokens.read_text().splitlines()
    cp.add_node("ws-1", "100.64.1.1")
    result = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 0, result.stderr
    assert tokens.read_text().splitlines() == [t for t in before if t.split("|")[0] != mine]
    assert [t.split("|")[0] for t in tokens.read_text().splitlines()] == [other, mine[:16], mine + "0"]
    assert tokens.stat().st_mode & 0o777 == 0o660
    assert [c for c in cp.calls() if c.startswith("flock -w 120 ")] and not [c for c in cp.calls() if mine in c]
    assert mine not in result.stdout + result.stderr
    again = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert again.returncode == 0 and [t.split("|")[0] for t in tokens.read_text().splitlines()] == [other, mine[:16], mine + "0"]
    bad = cp.run("microk8s-node-ready.sh", stdin="not-a-token\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert bad.returncode == 1 and "not 32 hex characters" in bad.stderr


def test_kubeconfig_points_at_the_chosen_server(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("microk8s-kubeconfig.sh", SERVER="203.0.113.11")
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["clusters"][0]["cluster"]["server"] == "https://203.0.113.11:16443"


@pytest.mark.parametrize("extra", ["    exec: {command: /tmp/x}\n", "- cluster:\n    server: https://198.51.100.66:16443\n",
                                   "    client-key-data: not base64!\n", "kind: Config\n$(reboot)\n"])
def test_kubeconfig_output_is_parsed_strictly_and_never_echoed(tmp_path: Path, extra: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    good = cp.run("microk8s-kubeconfig.sh", SERVER="203.0.113.11").stdout
    (cp.state / "config-output").write_text(good + extra)
    result = cp.run("microk8s-kubeconfig.sh", HOST_NAME="receipt", SERVER="203.0.113.11")
    assert result.returncode == 1 and result.stdout == ""
    assert "hybrid-ai[receipt] kubeconfig: ERROR: microk8s config" in result.stderr
    assert "S0VZUzNDUjNU" not in result.stderr and extra.strip() not in result.stderr


# --- NVIDIA -----------------------------------------------------------------------------

BOOT_1 = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
BOOT_2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def nvidia(tmp_path: Path) -> tuple[ClusterHost, dict[str, str]]:
    h = ClusterHost(tmp_path)
    (tmp_path / "boot_id").write_text(BOOT_1 + "\n")
    return h, {"HOST_NAME": "ws-1", "KEYRING": str(tmp_path / "keyring.gpg"), "SOURCES": str(tmp_path / "nvidia.list"),
               "BOOT_ID_FILE": str(tmp_path / "boot_id"), "TOOLKIT_VERSION": TOOLKIT_VERSION}


PINNED_TOOLKIT = ("apt-get -o DPkg::Lock::Timeout=120 install -y -q --allow-downgrades nvidia-container-toolkit=1.20.0-1 "
                  "nvidia-container-toolkit-base=1.20.0-1 libnvidia-container-tools=1.20.0-1 libnvidia-container1=1.20.0-1")


def test_fresh_gpu_host_gets_driver_toolkit_and_a_scheduled_reboot(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="535", **params)
    assert result.returncode == 0, result.stderr
    changes = h.state_changes()
    assert changes[:2] == ["apt-get -o DPkg::Lock::Timeout=120 update -q", "apt-get -o DPkg::Lock::Timeout=120 install -y -q nvidia-driver-535"]
    assert PINNED_TOOLKIT in changes
    assert changes[-2].startswith("systemd-run --on-active=5 --unit=hybrid-ai-nvidia-reboot")
    assert changes[-1] == "systemctl stop ssh.socket ssh.service"  # no new session in the old boot
    assert "signed-by=" in (tmp_path / "nvidia.list").read_text()
    assert result.stdout.splitlines() == [f"reboot_from_boot={BOOT_1}", "changed=driver toolkit-repo toolkit reboot-scheduled"]


def test_recommended_driver_through_ubuntu_drivers(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    assert h.run("nvidia-setup.sh", INSTALL_TOOLKIT="false", **params).returncode == 0
    assert "ubuntu-drivers install" in h.state_changes()


def test_gpu_host_with_working_driver_and_toolkit_changes_nothing(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    (h.state / "driver-loaded").write_text("1")
    (h.state / "installed" / "nvidia-container-toolkit").write_text("1.20.0-1")
    result = h.run("nvidia-setup.sh", **params)
    assert result.returncode == 0 and h.state_changes() == [] and result.stdout.strip() == "changed=none"


def test_toolkit_at_another_version_is_set_to_the_pinned_one_once(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    (h.state / "driver-loaded").write_text("1")
    (h.state / "installed" / "nvidia-container-toolkit").write_text("1.21.0-1")  # newer than what was read upstream
    (tmp_path / "keyring.gpg").write_text("keyring")
    (tmp_path / "nvidia.list").write_text("deb [signed-by=x] https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /")
    result = h.run("nvidia-setup.sh", **params)
    assert result.returncode == 0, result.stderr
    assert h.state_changes() == ["apt-get -o DPkg::Lock::Timeout=120 update -q", PINNED_TOOLKIT]
    assert (h.state / "installed" / "libnvidia-container1").read_text() == "1.20.0-1"
    again = h.run("nvidia-setup.sh", **params)
    assert again.returncode == 0 and h.state_changes() == [] and again.stdout.strip() == "changed=none"


def test_installed_driver_not_yet_loaded_only_reboots(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    (h.state / "installed" / "nvidia-driver-535").touch()
    result = h.run("nvidia-setup.sh", INSTALL_TOOLKIT="false", **params)
    assert result.returncode == 0
    assert [c.split()[0] for c in h.state_changes()] == ["systemd-run", "systemctl"]


def test_skipped_driver_that_does_not_work_fails_clearly(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    result = h.run("nvidia-setup.sh", INSTALL_DRIVER="false", **params)
    assert result.returncode == 1
    assert "nvidia.installDriver is false" in result.stderr and h.state_changes() == []


def test_gpu_check_waits_for_a_new_boot_id_after_a_scheduled_reboot(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    (h.state / "driver-loaded").write_text("1")
    report = f"reboot_from_boot={BOOT_1}\nchanged=driver reboot-scheduled"
    check = {"HOST_NAME": "ws-1", "BOOT_ID_FILE": params["BOOT_ID_FILE"], "SETUP_REPORT": report, "BOOT_WAIT_S": "30"}
    stuck = h.run("gpu-check.sh", **check)
    assert stuck.returncode == 1
    assert f"the host still runs boot {BOOT_1} 30s after the NVIDIA set-up scheduled a reboot" in stuck.stderr
    assert len(sleeps(h)) == 5 and "nvidia-smi -L" not in h.calls()
    (tmp_path / "boot_id").write_text(BOOT_2 + "\n")
    ok = h.run("gpu-check.sh", **check)
    assert ok.returncode == 0, ok.stderr
    assert sleeps(h) == [] and ok.stdout.splitlines()[0] == "gpus=1"
    # No reboot scheduled: nothing to wait for.
    assert h.run("gpu-check.sh", **{**check, "SETUP_REPORT": "changed=none"}).returncode == 0


def test_gpu_check_rejects_a_malformed_setup_report(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    (h.state / "driver-loaded").write_text("1")
    result = h.run("gpu-check.sh", HOST_NAME="ws-1", BOOT_ID_FILE=params["BOOT_ID_FILE"],
                   SETUP_REPORT="reboot_from_boot=$(id)\nchanged=none")
    assert result.returncode == 1 and "report is not in the expected format" in result.stderr


@pytest.mark.parametrize(("loaded", "count", "ok"), [("1", "1", True), ("1", "2", False), ("2", "2", True)])
def test_gpu_check_counts_the_gpus(tmp_path: Path, loaded: str, count: str, ok: bool) -> None:
    h = ClusterHost(tmp_path)
    (h.state / "driver-loaded").write_text(loaded)
    result = h.run("gpu-check.sh", GPU_COUNT=count)
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert f"shows {loaded} GPU(s), the config says gpu.count={count}" in result.stderr


def test_gpu_check_gives_up_after_its_bound(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path)
    result = h.run("gpu-check.sh", WAIT_S="20")
    assert result.returncode == 1
    assert "nvidia-smi still fails after 20s" in result.stderr
    assert len(sleeps(h)) == 3


# --- Post-deploy verification -----------------------------------------------------------

VERIFY = {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11", "WAIT_S": "30"}


def cluster_for_verify(tmp_path: Path, api_up: bool = True) -> ClusterHost:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    (cp.state / "gpus").mkdir()
    (cp.state / "gpus" / "ws-1").write_text("4")
    if api_up:
        (cp.state / "api-up").touch()
    return cp


def test_verify_passes_on_a_working_deployment(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified: nodes=2 probe=https://api.example.com/receipt/healthz"
    assert "curl -fsS -o /dev/null --max-time 10 --resolve api.example.com:443:203.0.113.11 https://api.example.com/receipt/healthz" in cp.calls()
    assert cp.state_changes() == []


def test_verify_names_everything_missing_after_its_bound(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path, api_up=False)
    (cp.state / "vpn").mkdir()
    (cp.state / "vpn" / "ws-1").write_text("100.64.1.1")
    (cp.state / "nodes" / "ws-1").write_text("198.51.100.11")  # joined on its LAN address
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1
    assert "node ws-1 has address '198.51.100.11', not its VPN address 100.64.1.1" in result.stderr
    assert "https://api.example.com/receipt/healthz does not answer through the ingress at 203.0.113.11" in result.stderr
    assert len(sleeps(cp)) == 2


def test_verify_checks_each_gpu_node_against_its_capacity_label(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    (cp.state / "want-gpus").mkdir()
    (cp.state / "want-gpus" / "ws-1").write_text("4")
    assert cp.run("verify-cluster.sh", **VERIFY).returncode == 0
    (cp.state / "gpus" / "ws-1").write_text("1")  # the plugin did not pick up time-slicing
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1
    assert "node ws-1 advertises 1 nvidia.com/gpu, expected 4 (GPUs x time-slicing replicas)" in result.stderr


def test_a_control_plane_joins_without_worker_once_and_leaves(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "cp-2", "100.64.0.4")
    assert h.run("microk8s-install.sh", **dict(CP, HOST_NAME="cp-2", NODE_IP="100.64.0.4", ADDONS="")).returncode == 0
    h.state_changes()
    join = dict(JOIN, HOST_NAME="cp-2", NODE_IP="100.64.0.4", WORKER="false")
    result = h.run("microk8s-join.sh", stdin=TOKEN, **join)
    assert result.returncode == 0, result.stderr
    assert h.state_changes()[0] == f"microk8s join 100.64.0.2:25000/{TOKEN}"
    assert not (h.snap_data / "var/lock/clustered.lock").exists()  # join.py marks only workers so
    again = h.run("microk8s-join.sh", stdin=TOKEN, **join)
    assert again.returncode == 0 and h.state_changes() == [] and again.stdout.strip() == "changed=none"
    assert h.run("microk8s-leave.sh").returncode == 0
    assert not (h.snap_data / "var/lock/no-cert-reissue").exists()


def upgrade_pair(tmp_path: Path) -> tuple[ClusterHost, ClusterHost]:
    """The seed control plane (kubectl) and a worker on 1.32/stable, both installed."""
    cp, ws = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2"), ClusterHost(tmp_path / "ws")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0 and ws.run("microk8s-install.sh", **WORKER).returncode == 0
    cp.add_node("ws-1", "100.64.1.1")
    return cp, ws


def test_an_upgrade_drains_refreshes_waits_ready_and_uncordons_then_does_nothing(tmp_path: Path) -> None:
    cp, ws = upgrade_pair(tmp_path)
    up = {"NODE_NAME": "ws-1", "CHANNEL": "1.33/stable"}
    drain = cp.run("microk8s-upgrade-drain.sh", **up, DRAIN_TIMEOUT_S="120")
    assert drain.returncode == 0, drain.stderr
    assert cp.state_changes() == ["microk8s kubectl annotate --overwrite node ws-1 hybrid-ai/upgrade-cordoned=true",
                                  "microk8s kubectl drain ws-1 --ignore-daemonsets --delete-emptydir-data --timeout=120s"]
    refresh = ws.run("microk8s-upgrade-refresh.sh", HOST_NAME="ws-1", CHANNEL="1.33/stable")
    assert refresh.returncode == 0 and ws.state_changes() == ["snap refresh microk8s --channel=1.33/stable"]
    back = cp.run("microk8s-upgrade-uncordon.sh", **up, WAIT_S="10")
    assert back.returncode == 0, back.stderr
    assert cp.state_changes() == ["microk8s kubectl uncordon ws-1", "microk8s kubectl annotate node ws-1 hybrid-ai/upgrade-cordoned-",
                                  "microk8s kubectl annotate --overwrite node ws-1 hybrid-ai/channel=1.33/stable"]
    assert not (cp.state / "cordoned" / "ws-1").exists()
    # Run again (a later `up` during the same roll): nothing changes anywhere.
    for host, script in ((cp, "microk8s-upgrade-drain.sh"), (ws, "microk8s-upgrade-refresh.sh"), (cp, "microk8s-upgrade-uncordon.sh")):
        again = host.run(script, **up, HOST_NAME="ws-1")
        assert again.returncode == 0 and host.state_changes() == [] and again.stdout.strip() == "changed=none", script


def test_a_drain_a_disruption_budget_blocks_stops_the_roll_naming_the_node_and_leaves_it_cordoned(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "pdb-blocks").touch()
    result = cp.run("microk8s-upgrade-drain.sh", NODE_NAME="ws-1", CHANNEL="1.33/stable", DRAIN_TIMEOUT_S="60")
    assert result.returncode == 1
    assert "upgrade to 1.33/stable stopped at ws-1: drain did not finish within 60s (a PodDisruptionBudget?)" in result.stderr
    assert (cp.state / "cordoned" / "ws-1").exists()  # as kubectl leaves it: cordoned first


def test_an_operator_cordoned_node_stays_cordoned_after_its_upgrade(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "cordoned").mkdir()
    (cp.state / "cordoned" / "ws-1").touch()
    up = {"NODE_NAME": "ws-1", "CHANNEL": "1.33/stable"}
    assert cp.run("microk8s-upgrade-drain.sh", **up).returncode == 0
    assert cp.run("microk8s-upgrade-uncordon.sh", **up, WAIT_S="10").returncode == 0
    assert (cp.state / "cordoned" / "ws-1").exists()
    assert "microk8s kubectl uncordon ws-1" not in cp.state_changes()


def test_a_node_not_ready_after_its_refresh_stops_the_roll_naming_it(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "not-ready").mkdir()
    (cp.state / "not-ready" / "ws-1").touch()
    result = cp.run("microk8s-upgrade-uncordon.sh", NODE_NAME="ws-1", CHANNEL="1.33/stable", WAIT_S="5")
    assert result.returncode == 1 and "upgrade to 1.33/stable stopped at ws-1: not Ready" in result.stderr
    assert cp.state_changes() == []


def test_verify_with_three_control_planes_needs_high_availability_formed(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    result = cp.run("verify-cluster.sh", **{**VERIFY, "WAIT_S": "10"}, VOTERS="3")
    assert result.returncode == 1
    assert "high availability not formed: microk8s status does not say 'high-availability: yes' with 3 control planes" in result.stderr
    (cp.state / "ha").write_text("yes")
    assert cp.run("verify-cluster.sh", **VERIFY, VOTERS="3").returncode == 0
    assert cp.run("verify-cluster.sh", **VERIFY, VOTERS="1").returncode == 0  # one control plane: never HA
