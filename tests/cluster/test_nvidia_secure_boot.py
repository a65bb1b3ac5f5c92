"""The NVIDIA driver's kernel module under Secure Boot, with stubs of ubuntu-drivers, apt-get and
mokutil: the Canonical-signed prebuilt modules whenever the archive has them for the host's
kernel, DKMS only where Secure Boot is off, and a refusal naming the host and the fix, before
anything changes, where DKMS would be the only way (first install, the roll's install on the
drained host, and the set-up step that runs before the roll drains anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.cluster.nvidia import TOOLKIT_VERSION
from tests.support.cluster_stubs import ClusterHost

BOOT_1 = "0f5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
UPDATE = "apt-get -o DPkg::Lock::Timeout=120 update -q"
SB_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def host(tmp_path: Path, secure_boot: str | None = "enabled", dkms_only: tuple[str, ...] = ()) -> tuple[ClusterHost, dict[str, str]]:
    """A GPU host without a driver; `secure_boot` as mokutil reports it (None: a BIOS boot);
    `dkms_only`: the branches the archive has no signed modules for on this kernel."""
    h = ClusterHost(tmp_path)
    (tmp_path / "boot_id").write_text(BOOT_1 + "\n")
    if secure_boot is not None:
        (h.state / "secure-boot").write_text(secure_boot)
    (h.state / "dkms-only").write_text("".join(b + "\n" for b in dkms_only))
    return h, {"HOST_NAME": "ws-1", "BOOT_ID_FILE": str(tmp_path / "boot_id"), "TOOLKIT_VERSION": TOOLKIT_VERSION,
               "INSTALL_TOOLKIT": "false", "EFIVARS": str(tmp_path / "efivars")}


def installed(h: ClusterHost) -> list[str]:
    return sorted(p.name for p in (h.state / "installed").iterdir())


def error(stderr: str) -> str:
    [line] = [x for x in stderr.splitlines() if "ERROR" in x]
    return line


def running_535(h: ClusterHost) -> None:
    """Branch 535 works, with its signed modules, as `ubuntu-drivers install` left it."""
    for p in ("nvidia-driver-535", "linux-modules-nvidia-535-generic"):
        (h.state / "installed" / p).touch()
    (h.state / "driver-loaded").write_text("1")


def test_secure_boot_refuses_a_dkms_only_first_install_before_changing_anything(tmp_path: Path) -> None:
    h, params = host(tmp_path, dkms_only=("550",))
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert result.returncode == 1
    assert h.state_changes() == [UPDATE] and installed(h) == []  # no package, no reboot
    line = error(result.stderr)
    assert line.startswith("hybrid-ai[ws-1] nvidia: ERROR: nvidia-driver-550: Secure Boot is on")
    assert "no Canonical-signed linux-modules-nvidia for branch 550 on this kernel" in line and "nothing was changed" in line
    assert "Set nvidia.driverVersion to a branch `ubuntu-drivers list` shows" in line and "or turn Secure Boot off" in line
    assert "cordon" not in line  # not drained: a first install
    # Another branch with signed modules goes in, the signed way.
    ok = h.run("nvidia-setup.sh", DRIVER_VERSION="535", **params)
    assert ok.returncode == 0, ok.stderr
    assert installed(h) == ["linux-modules-nvidia-535-generic", "nvidia-driver-535"]


@pytest.mark.parametrize(("secure_boot", "refused"), [
    ("enabled", True), ("shim-off", False), ("disabled", False), (None, False),
])
def test_dkms_is_used_only_where_secure_boot_does_not_check_modules(tmp_path: Path, secure_boot: str | None, refused: bool) -> None:
    h, params = host(tmp_path, secure_boot, dkms_only=("550",))
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert (result.returncode == 1) == refused, result.stderr
    if not refused:  # no signed modules for this kernel: the driver as before, DKMS building the module
        assert h.state_changes()[:2] == [UPDATE, "apt-get -o DPkg::Lock::Timeout=120 install -y -q nvidia-driver-550"]
        assert "reboot_from_boot=" + BOOT_1 in result.stdout


@pytest.mark.parametrize(("value", "refused"), [(1, True), (0, False), (None, False)])
def test_without_mokutil_the_firmware_variable_says_whether_secure_boot_is_on(tmp_path: Path, value: int | None, refused: bool) -> None:
    h, params = host(tmp_path, None, dkms_only=("550",))
    (h.bin / "mokutil").unlink()
    if value is not None:
        (tmp_path / "efivars").mkdir()
        (tmp_path / "efivars" / SB_VAR).write_bytes(bytes([6, 0, 0, 0, value]))  # attributes, then the value
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert (result.returncode == 1) == refused, result.stderr


@pytest.mark.parametrize("secure_boot", ["enabled", "disabled"])
def test_without_ubuntu_drivers_the_driver_comes_with_dkms_where_secure_boot_allows_it(tmp_path: Path, secure_boot: str) -> None:
    """A host without ubuntu-drivers (Debian): the driver package as before; refused under Secure Boot."""
    h, params = host(tmp_path, secure_boot)
    (h.bin / "ubuntu-drivers").unlink()
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="535", **params)
    if secure_boot == "enabled":
        assert result.returncode == 1 and h.state_changes() == [UPDATE]
        assert "nvidia-driver-535: Secure Boot is on" in error(result.stderr)
    else:
        assert result.returncode == 0, result.stderr
        assert "apt-get -o DPkg::Lock::Timeout=120 install -y -q nvidia-driver-535" in h.state_changes()


def test_ubuntu_drivers_success_after_a_failed_apt_get_is_not_believed(tmp_path: Path) -> None:
    """ubuntu-drivers exits 0 when its apt-get fails (a dpkg lock): the script checks what got
    installed and tries again."""
    h, params = host(tmp_path)
    # The dpkg lock is held once, just when ubuntu-drivers runs apt-get.
    (h.bin / "ubuntu-drivers").rename(h.bin / "ubuntu-drivers.stub")
    (h.bin / "ubuntu-drivers").write_text('#!/usr/bin/env bash\n[ "$1" != install ] || [ -e "$STATE/locked" ] '
                                          '|| { touch "$STATE/locked"; echo 1 > "$STATE/apt-fail"; }\n'
                                          'exec "$(dirname "$0")/ubuntu-drivers.stub" "$@"\n')
    (h.bin / "ubuntu-drivers").chmod(0o755)
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert result.returncode == 0, result.stderr
    assert [c for c in h.calls() if c.startswith("ubuntu-drivers.stub install")] == ["ubuntu-drivers.stub install nvidia:550"] * 2
    assert installed(h) == ["linux-modules-nvidia-550-generic", "nvidia-driver-550"]


def test_an_installed_dkms_only_driver_gets_its_signed_modules_before_the_reboot(tmp_path: Path) -> None:
    """Installed by hand with apt-get (DKMS), not loaded yet: under Secure Boot a reboot alone
    would not load it; ubuntu-drivers passes over an installed driver, so the modules go in."""
    h, params = host(tmp_path)
    (h.state / "installed" / "nvidia-driver-550").touch()
    result = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert result.returncode == 0, result.stderr
    assert h.state_changes()[:2] == [UPDATE, "apt-get -o DPkg::Lock::Timeout=120 install -y -q linux-modules-nvidia-550-generic"]
    assert "reboot_from_boot=" + BOOT_1 in result.stdout
    # Without Secure Boot the same host only reboots, as before.
    (h.state / "installed" / "linux-modules-nvidia-550-generic").unlink()
    (h.state / "secure-boot").write_text("disabled")
    again = h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params)
    assert [c.split()[0] for c in h.state_changes()] == ["systemd-run", "systemctl"], again.stderr


def test_the_recommended_driver_under_secure_boot_must_have_signed_modules(tmp_path: Path) -> None:
    h, params = host(tmp_path, dkms_only=("580", "570", "550-server", "550", "535-server", "535"))
    result = h.run("nvidia-setup.sh", **params)
    assert result.returncode == 1 and h.state_changes() == [UPDATE]
    assert "the recommended driver: Secure Boot is on" in error(result.stderr)
    (h.state / "dkms-only").write_text("535\n")  # the recommended one has none: ubuntu-drivers takes the next
    ok = h.run("nvidia-setup.sh", **params)
    assert ok.returncode == 0, ok.stderr
    assert installed(h) == ["linux-modules-nvidia-580-generic", "nvidia-driver-580"]


def test_the_driver_roll_on_a_secure_boot_host_is_refused_before_it_drains(tmp_path: Path) -> None:
    """The finding: 550 with DKMS only, Secure Boot on. The host's own set-up (which every GPU host
    runs before the roll drains its first node) refuses the pending roll; the roll's install step
    on the drained host refuses too, leaving 535 and its signed modules, and says how to uncordon."""
    h, params = host(tmp_path, dkms_only=("550",))
    running_535(h)
    pending = h.run("nvidia-setup.sh", DRIVER_VERSION="550", DRIVER_FROM="535", **params)
    assert pending.returncode == 1 and h.state_changes() == []
    line = error(pending.stderr)
    assert "the driver roll to 550 stops before draining ws-1: Secure Boot is on" in line and "nothing was changed" in line
    replace = h.run("nvidia-setup.sh", DRIVER_VERSION="550", REPLACE_DRIVER="true", **params)
    assert replace.returncode == 1 and h.state_changes() == [UPDATE]
    assert installed(h) == ["linux-modules-nvidia-535-generic", "nvidia-driver-535"]
    assert "ws-1 stays cordoned on its working driver: `microk8s kubectl uncordon ws-1` puts it back to work" in error(replace.stderr)
    # With signed modules for 550 the roll goes ahead, the signed way.
    (h.state / "dkms-only").write_text("")
    assert h.run("nvidia-setup.sh", DRIVER_VERSION="550", DRIVER_FROM="535", **params).returncode == 0
    moved = h.run("nvidia-setup.sh", DRIVER_VERSION="550", REPLACE_DRIVER="true", **params)
    assert moved.returncode == 0, moved.stderr
    assert installed(h) == ["linux-modules-nvidia-550-generic", "nvidia-driver-550"]


ALL_DKMS_ONLY = ("580", "570", "550-server", "550", "535-server", "535")


def test_the_recommended_driver_without_secure_boot_may_be_dkms_and_nothing_installed_means_no_reboot(tmp_path: Path) -> None:
    """Review 8 H1: without --include-dkms, ubuntu-drivers installs nothing where the archive has
    no signed modules for this kernel, and exits 0; the host was rebooted on every run with no
    driver. Now DKMS is allowed with Secure Boot off, and no driver installed means no reboot."""
    h, params = host(tmp_path, secure_boot="disabled", dkms_only=ALL_DKMS_ONLY)
    result = h.run("nvidia-setup.sh", **params)
    assert result.returncode == 0, result.stderr
    assert installed(h) == ["nvidia-driver-535"]  # the recommended branch, its module from DKMS
    assert any(c.startswith("systemd-run") for c in h.state_changes())  # the reboot it needs
    # A GPU the archive has no driver for: nothing installed, and no reboot scheduled.
    bare, bare_params = host(tmp_path / "bare", secure_boot="disabled")
    (bare.state / "archive").write_text("")
    (bare.state / "recommended").write_text("")
    none = bare.run("nvidia-setup.sh", **bare_params)
    assert none.returncode == 1 and installed(bare) == []
    assert not [c for c in bare.state_changes() if c.startswith(("systemd-run", "systemctl"))]
    assert "ubuntu-drivers installed no NVIDIA driver" in error(none.stderr) and "no reboot was scheduled" in error(none.stderr)


def test_ubuntu_drivers_waits_for_the_apt_lock_as_long_as_our_own_apt_get(tmp_path: Path) -> None:
    """Review 8 M1: ubuntu-drivers' own apt-get gets the same 120 s lock wait, through APT_CONFIG."""
    h, params = host(tmp_path)
    assert h.run("nvidia-setup.sh", DRIVER_VERSION="550", **params).returncode == 0
    assert (h.state / "apt-config-seen").read_text() == 'DPkg::Lock::Timeout "120";\n'
