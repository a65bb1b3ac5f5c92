"""What a mirrored host's preflight adds on the host itself: the kernel flavour of the NVIDIA
driver's signed modules, picked as ubuntu-drivers picks it (read with the real dpkg-query from a
dpkg database of Ubuntu's kernel packages), and chrony exactly where base-bootstrap.sh installs it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from components.kit.shell import script_text
from tests.support.dpkg import admindir

KERNEL_FLAVOUR = re.search(r"^kernel_flavour\(\) \{.*?^\}$", script_text("mirrors.sh"), re.M | re.S)


def _flavour(tmp_path: Path, packages: dict[str, str]) -> str:
    assert KERNEL_FLAVOUR is not None
    env = {**os.environ, "DPKG_ADMINDIR": str(admindir(tmp_path / "dpkg", packages))}
    out = subprocess.run(["bash", "-c", KERNEL_FLAVOUR.group(0) + "\nkernel_flavour"], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(("packages", "flavour"), [
    # A server: linux-image-generic on the one kernel.
    ({"linux-image-generic": "linux-image-6.8.0-45-generic, linux-firmware", "linux-image-6.8.0-45-generic": ""}, "generic"),
    # A desktop on the HWE kernel, the GA metapackage still installed on the older kernel: the newest kernel's.
    ({"linux-image-generic": "linux-image-6.8.0-45-generic", "linux-image-6.8.0-45-generic": "",
      "linux-image-generic-hwe-24.04": "linux-image-6.11.0-19-generic, linux-firmware", "linux-image-6.11.0-19-generic": ""},
     "generic-hwe-24.04"),
    # A cloud image's `virtual` metapackage: ubuntu-drivers reads it as generic.
    ({"linux-image-virtual": "linux-image-6.8.0-45-generic", "linux-image-6.8.0-45-generic": ""}, "generic"),
    # Signed kernels are named linux-image-unsigned-... where the signed one is built separately.
    ({"linux-image-lowlatency": "linux-image-unsigned-6.8.0-45-lowlatency", "linux-image-unsigned-6.8.0-45-lowlatency": ""}, "lowlatency"),
    # No metapackage: ubuntu-drivers finds no modules package; nothing to name.
    ({"linux-image-6.8.0-45-generic": ""}, ""),
])
def test_the_kernel_flavour_is_the_one_ubuntu_drivers_picks(tmp_path: Path, packages: dict[str, str], flavour: str) -> None:
    assert _flavour(tmp_path, packages) == flavour


def _needs_chrony(tmp_path: Path, active: set[str], unit_files: set[str]) -> bool:
    """timesync.sh's test against a stand-in systemctl answering as systemd does: `is-active
    --quiet` 0 for an active unit, 3 otherwise; `list-unit-files <unit>` 1 when it lists none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text(
        "#!/bin/bash\ncase $1 in\n"
        f"  is-active) for u in {' '.join(active)}; do [ \"$3\" = \"$u\" ] && exit 0; done; exit 3 ;;\n"
        f"  list-unit-files) for u in {' '.join(f'{u}.service' for u in unit_files)}; do [ \"$2\" = \"$u\" ] && exit 0; done; exit 1 ;;\n"
        "esac\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", script_text("timesync.sh") + "\nneeds_chrony"], env=env).returncode == 0


def test_chrony_is_needed_only_without_a_time_daemon_or_timesyncd(tmp_path: Path) -> None:
    assert _needs_chrony(tmp_path, set(), set())
    assert not _needs_chrony(tmp_path, set(), {"systemd-timesyncd"})  # started instead
    assert not _needs_chrony(tmp_path, {"chrony"}, {"chrony"})
    assert not _needs_chrony(tmp_path, {"systemd-timesyncd"}, {"systemd-timesyncd"})


def test_the_preflight_and_the_bootstrap_install_chrony_on_the_same_test() -> None:
    """base-bootstrap.sh installs chrony only under `needs_chrony`, and the preflight adds chrony to
    what it checks under that same function (one place: timesync.sh), nowhere else."""
    base, mirrors = script_text("base-bootstrap.sh"), script_text("mirrors.sh")
    assert re.search(r"^if needs_chrony; then\n\s+retry apt-get [^\n]* install -y -q chrony ", base, re.M)
    assert base.count("install -y -q chrony") == 1 and "list-unit-files" not in base
    assert re.search(r"needs_chrony; then APT_PACKAGES\+=\" chrony\"", mirrors)
    assert "# uses: timesync.sh" in base and "# uses: timesync.sh" in mirrors
