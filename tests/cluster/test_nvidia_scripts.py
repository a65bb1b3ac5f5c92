"""The NVIDIA driver and toolkit set-up and the GPU check under recording stubs: the pinned
toolkit, a scheduled reboot waited for by boot id, a second run that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.cluster.nvidia import TOOLKIT_KEY_URL, TOOLKIT_REPO_URL, TOOLKIT_VERSION
from tests.support.cluster_scripts import sleeps
from tests.support.cluster_stubs import ClusterHost

BOOT_1 = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
BOOT_2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def nvidia(tmp_path: Path) -> tuple[ClusterHost, dict[str, str]]:
    h = ClusterHost(tmp_path)
    (tmp_path / "boot_id").write_text(BOOT_1 + "\n")
    return h, {"HOST_NAME": "ws-1", "KEYRING": str(tmp_path / "keyring.gpg"), "SOURCES": str(tmp_path / "nvidia.list"),
               "BOOT_ID_FILE": str(tmp_path / "boot_id"), "TOOLKIT_VERSION": TOOLKIT_VERSION,
               "TOOLKIT_REPO_URL": TOOLKIT_REPO_URL, "TOOLKIT_KEY_URL": TOOLKIT_KEY_URL}


PINNED_TOOLKIT = ("apt-get -o DPkg::Lock::Timeout=120 install -y -q --allow-downgrades nvidia-container-toolkit=1.20.0-1 "
                  "nvidia-container-toolkit-base=1.20.0-1 libnvidia-container-tools=1.20.0-1 libnvidia-container1=1.20.0-1")


def test_a_mirrored_host_fetches_no_key_and_keeps_the_mirror_steps_sources(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    params |= {"TOOLKIT_REPO_URL": "", "TOOLKIT_KEY_URL": ""}  # as the program passes them with mirrors.nvidiaApt
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="535", **params)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "nvidia.list").exists() and not (tmp_path / "keyring.gpg").exists()
    assert not [c for c in h.state_changes() if c.startswith("curl")]
    assert PINNED_TOOLKIT in h.state_changes()


def test_fresh_gpu_host_gets_driver_toolkit_and_a_scheduled_reboot(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="535", **params)
    assert result.returncode == 0, result.stderr
    changes = h.state_changes()
    # The signed, prebuilt module the archive has for the kernel comes with the driver, not DKMS.
    assert changes[:3] == ["apt-get -o DPkg::Lock::Timeout=120 update -q", "ubuntu-drivers install nvidia:535",
                           "apt-get install -o DPkg::options::=--force-confnew -y nvidia-driver-535 linux-modules-nvidia-535-generic"]
    assert PINNED_TOOLKIT in changes
    assert changes[-2].startswith("systemd-run --on-active=5 --unit=hybrid-ai-nvidia-reboot")
    assert changes[-1] == "systemctl stop ssh.socket ssh.service"  # no new session in the old boot
    assert "signed-by=" in (tmp_path / "nvidia.list").read_text()
    assert result.stdout.splitlines() == [f"reboot_from_boot={BOOT_1}", "changed=driver toolkit-repo toolkit reboot-scheduled"]


def test_recommended_driver_through_ubuntu_drivers(tmp_path: Path) -> None:
    h, params = nvidia(tmp_path)
    assert h.run("nvidia-setup.sh", INSTALL_TOOLKIT="false", **params).returncode == 0
    # Secure Boot off (a BIOS boot here): a driver whose module only DKMS builds is allowed.
    assert "ubuntu-drivers install --include-dkms" in h.state_changes()


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
