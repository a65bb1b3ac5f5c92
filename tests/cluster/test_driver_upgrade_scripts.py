"""The driver roll's steps and the maintenance window under stubs: drain on the seed (inside the
window only), the new branch installed on the drained host, the reboot and `nvidia-smi` on the
new branch waited for, Ready again, uncordon; a failure stops the roll naming the node; a re-run
changes nothing; and the host's own set-up never replaces a working driver."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.cluster.nvidia import TOOLKIT_VERSION
from tests.support.cluster_scripts import CP
from tests.support.cluster_stubs import ClusterHost

BOOT_1 = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
BOOT_2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ROLL_550 = {"NODE_NAME": "ws-1", "MARK": "nvidia-driver", "TARGET": "550", "ROLL": "NVIDIA driver upgrade to 550"}


def epoch(text: str) -> str:
    return str(int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()))


def rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gpu_pair(tmp_path: Path) -> tuple[ClusterHost, ClusterHost]:
    """The seed control plane, and ws-1 running driver branch 535 with its signed modules, as
    `ubuntu-drivers install` leaves it (booted as BOOT_1)."""
    cp, ws = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2"), ClusterHost(tmp_path / "ws")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    cp.add_node("ws-1", "100.64.1.1")
    (ws.state / "installed" / "nvidia-driver-535").touch()
    (ws.state / "installed" / "linux-modules-nvidia-535-generic").touch()
    (ws.state / "driver-loaded").write_text("1")
    (ws.root / "boot_id").write_text(BOOT_1 + "\n")
    return cp, ws


def on_ws(ws: ClusterHost) -> dict[str, str]:
    return {"HOST_NAME": "ws-1", "BOOT_ID_FILE": str(ws.root / "boot_id"), "TOOLKIT_VERSION": TOOLKIT_VERSION}


def install(ws: ClusterHost, version: str = "550") -> dict[str, str]:
    return {**on_ws(ws), "INSTALL_DRIVER": "true", "DRIVER_VERSION": version, "REPLACE_DRIVER": "true", "INSTALL_TOOLKIT": "false"}


def reboot(ws: ClusterHost) -> None:
    """The scheduled reboot: a new boot ID, and the module of the installed branch loaded."""
    (ws.root / "boot_id").write_text(BOOT_2 + "\n")
    branch = max(int(m[1]) for p in (ws.state / "installed").iterdir() if (m := re.fullmatch(r"nvidia-driver-([0-9]+)(-server)?", p.name)))
    (ws.state / "driver-branch").write_text(str(branch))


def test_a_driver_roll_drains_installs_reboots_waits_for_the_new_branch_and_uncordons_then_does_nothing(tmp_path: Path) -> None:
    cp, ws = gpu_pair(tmp_path)
    drained = cp.run("microk8s-upgrade-drain.sh", **ROLL_550, DRAIN_TIMEOUT_S="120")
    assert drained.returncode == 0, drained.stderr
    assert cp.state_changes()[-1] == "microk8s kubectl drain ws-1 --ignore-daemonsets --delete-emptydir-data --timeout=120s"
    installed = ws.run("nvidia-setup.sh", **install(ws))
    assert installed.returncode == 0, installed.stderr
    changes = ws.state_changes()
    assert changes[:2] == ["apt-get -o DPkg::Lock::Timeout=120 update -q", "ubuntu-drivers install nvidia:550"]
    assert changes[-2].startswith("systemd-run --on-active=5") and changes[-1] == "systemctl stop ssh.socket ssh.service"
    # The other branch goes, as apt does it; the new one comes with its signed modules, not DKMS.
    assert sorted(p.name for p in (ws.state / "installed").iterdir()) == ["linux-modules-nvidia-550-generic", "nvidia-driver-550"]
    check = {**on_ws(ws), "SETUP_REPORT": installed.stdout.strip(), "DRIVER_BRANCH": "550", "ROLL": "NVIDIA driver upgrade to 550",
             "BOOT_WAIT_S": "10", "WAIT_S": "10"}
    stuck = ws.run("gpu-check.sh", **check)  # the reboot has not happened
    assert stuck.returncode == 1
    assert f"NVIDIA driver upgrade to 550 stopped at ws-1: the host still runs boot {BOOT_1}" in stuck.stderr
    reboot(ws)
    back = ws.run("gpu-check.sh", **check)
    assert back.returncode == 0, back.stderr
    assert back.stdout.splitlines()[:2] == ["gpus=1", "driver=550.183.01"]
    since = int(re.findall(r"^back_at=([0-9]+)$", back.stdout, re.M)[0])
    cp.kubelet_posts("ws-1", "v1.32.3", rfc3339(since - 30))  # the kubelet's last post from before the reboot
    assert cp.run("microk8s-upgrade-uncordon.sh", **ROLL_550, WAIT_S="5", SINCE=str(since)).returncode == 1
    cp.kubelet_posts("ws-1", "v1.32.3", rfc3339(since + 5))
    done = cp.run("microk8s-upgrade-uncordon.sh", **ROLL_550, WAIT_S="5", SINCE=str(since))
    assert done.returncode == 0, done.stderr
    assert cp.state_changes()[-1] == "microk8s kubectl annotate --overwrite node ws-1 hybrid-ai/nvidia-driver=550"
    assert not (cp.state / "cordoned" / "ws-1").exists()
    # Run again (a later `up` while fromDriverVersion is still set): nothing changes anywhere.
    for host, script, extra in ((cp, "microk8s-upgrade-drain.sh", ROLL_550), (ws, "nvidia-setup.sh", install(ws)),
                                (cp, "microk8s-upgrade-uncordon.sh", ROLL_550)):
        again = host.run(script, **extra)
        assert again.returncode == 0 and host.state_changes() == [] and again.stdout.splitlines()[-1] == "changed=none", script
    assert ws.run("gpu-check.sh", **{**check, "SETUP_REPORT": "changed=none"}).returncode == 0


def test_a_host_back_on_the_old_branch_stops_the_roll_naming_it(tmp_path: Path) -> None:
    """The module that loads after the reboot is still 535 (e.g. DKMS failed to build 550): NVML
    refuses the 550 tools, and the check gives up within its bound, naming the node."""
    _, ws = gpu_pair(tmp_path)
    installed = ws.run("nvidia-setup.sh", **install(ws))
    (ws.root / "boot_id").write_text(BOOT_2 + "\n")  # rebooted, but no new module
    result = ws.run("gpu-check.sh", **on_ws(ws), SETUP_REPORT=installed.stdout.strip(), DRIVER_BRANCH="550",
                    ROLL="NVIDIA driver upgrade to 550", WAIT_S="10")
    assert result.returncode == 1
    assert "NVIDIA driver upgrade to 550 stopped at ws-1: nvidia-smi still fails to answer on branch 550 or newer" in result.stderr
    assert "version mismatch" in result.stderr


def test_a_transitional_branch_counts_as_the_branch_asked_for(tmp_path: Path) -> None:
    """Ubuntu makes an end-of-life branch's nvidia-driver-N depend on a newer branch (570 -> 580)."""
    _, ws = gpu_pair(tmp_path)
    (ws.state / "transitional").mkdir()
    (ws.state / "transitional" / "nvidia-driver-570").write_text("nvidia-driver-580")
    installed = ws.run("nvidia-setup.sh", **install(ws, "570"))
    assert installed.returncode == 0, installed.stderr
    reboot(ws)
    back = ws.run("gpu-check.sh", **on_ws(ws), SETUP_REPORT=installed.stdout.strip(), DRIVER_BRANCH="570", WAIT_S="10")
    assert back.returncode == 0, back.stderr
    assert "driver=580.183.01" in back.stdout.splitlines()
    assert ws.run("nvidia-setup.sh", **install(ws, "570")).stdout.strip() == "changed=none"


def test_a_server_branch_is_installed_by_its_own_package_and_counts_by_its_number(tmp_path: Path) -> None:
    _, ws = gpu_pair(tmp_path)
    installed = ws.run("nvidia-setup.sh", **install(ws, "550-server"))
    assert installed.returncode == 0, installed.stderr
    assert "ubuntu-drivers install nvidia:550-server" in ws.state_changes()
    assert sorted(p.name for p in (ws.state / "installed").iterdir()) == ["linux-modules-nvidia-550-server-generic", "nvidia-driver-550-server"]
    reboot(ws)
    back = ws.run("gpu-check.sh", **on_ws(ws), SETUP_REPORT=installed.stdout.strip(), DRIVER_BRANCH="550", WAIT_S="10")
    assert back.returncode == 0 and "driver=550.183.01" in back.stdout.splitlines(), back.stderr


def test_the_hosts_own_set_up_never_replaces_a_working_driver(tmp_path: Path) -> None:
    """A changed driverVersion re-runs `<host>-gpu-setup` on every GPU host at once: it must not
    install and reboot there. It accepts the old branch while the roll is asked for, and says
    how to ask for it otherwise, before changing anything."""
    _, ws = gpu_pair(tmp_path)
    setup = {**on_ws(ws), "DRIVER_VERSION": "550", "INSTALL_TOOLKIT": "false"}
    refused = ws.run("nvidia-setup.sh", **setup)
    assert refused.returncode == 1 and ws.state_changes() == []
    assert "driver branch 535 runs here, nvidia.driverVersion is 550: set nvidia.fromDriverVersion: '535' on this host" in refused.stderr
    pending = ws.run("nvidia-setup.sh", **setup, DRIVER_FROM="535")
    assert pending.returncode == 0 and ws.state_changes() == [] and pending.stdout.strip() == "changed=none"
    newer = ws.run("nvidia-setup.sh", **{**setup, "DRIVER_VERSION": "470"})  # a newer branch runs than asked: accepted
    assert newer.returncode == 0 and ws.state_changes() == []


SAT_SUN = {"WINDOW": "Sat,Sun 02:00-06:00", "WINDOW_DAYS": "Sat Sun"}
FRI_NIGHT = {"WINDOW": "Fri 22:00-04:00", "WINDOW_DAYS": "Fri"}


@pytest.mark.parametrize(("window", "now", "inside"), [
    (SAT_SUN, "2026-11-28 03:00", True),   # a Saturday
    (SAT_SUN, "2026-11-29 05:59", True),
    (SAT_SUN, "2026-11-28 06:00", False),  # the end is outside
    (SAT_SUN, "2026-11-27 03:00", False),  # a Friday
    (FRI_NIGHT, "2026-11-27 23:00", True),
    (FRI_NIGHT, "2026-11-28 03:59", True),  # Saturday morning: Friday's window, past midnight
    (FRI_NIGHT, "2026-11-28 23:00", False),
    (FRI_NIGHT, "2026-11-27 03:00", False),  # Friday morning: Thursday opened no window
])
def test_a_node_is_drained_only_inside_the_maintenance_window(tmp_path: Path, window: dict[str, str], now: str, inside: bool) -> None:
    cp, _ = gpu_pair(tmp_path)
    result = cp.run("microk8s-upgrade-drain.sh", **ROLL_550, **window, NOW=epoch(now))
    assert (result.returncode == 0) == inside, result.stderr
    if not inside:
        assert cp.state_changes() == [] and not (cp.state / "cordoned" / "ws-1").exists()  # nothing touched
        [line] = [x for x in result.stderr.splitlines() if "ERROR" in x]
        assert f"NVIDIA driver upgrade to 550 stopped before ws-1: outside cluster.upgrade.window ({window['WINDOW']} UTC" in line
        assert "run `pulumi up` again inside the window" in line


def test_a_node_done_before_the_window_closed_is_not_stopped_by_it(tmp_path: Path) -> None:
    """A re-run after the window's end passes the nodes already marked, and stops at the first
    one still to do: the roll names where it stopped."""
    cp, _ = gpu_pair(tmp_path)
    (cp.state / "annotations" / "ws-1").mkdir(parents=True)
    (cp.state / "annotations" / "ws-1" / "nvidia-driver").write_text("550\n")
    late = epoch("2026-11-28 07:00")
    assert cp.run("microk8s-upgrade-drain.sh", **ROLL_550, **SAT_SUN, NOW=late).returncode == 0
    assert cp.state_changes() == []
    cp.add_node("ws-2", "100.64.1.2")
    stopped = cp.run("microk8s-upgrade-drain.sh", **{**ROLL_550, "NODE_NAME": "ws-2"}, **SAT_SUN, NOW=late)
    assert stopped.returncode == 1 and "stopped before ws-2: outside cluster.upgrade.window" in stopped.stderr


def test_a_node_an_earlier_attempt_left_cordoned_is_named_so_when_the_window_stops_the_roll(tmp_path: Path) -> None:
    cp, _ = gpu_pair(tmp_path)
    (cp.state / "cordoned").mkdir(exist_ok=True)
    (cp.state / "cordoned" / "ws-1").touch()  # a drain that timed out before
    stopped = cp.run("microk8s-upgrade-drain.sh", **ROLL_550, **SAT_SUN, NOW=epoch("2026-11-30 03:00"))  # a Monday
    assert stopped.returncode == 1 and cp.state_changes() == []
    assert "it is still cordoned from an earlier attempt, the ones after it are untouched" in stopped.stderr
