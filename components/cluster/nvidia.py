"""NVIDIA driver and container toolkit on a GPU host, with an explicit, bounded reboot wait.

Part of a host's bootstrap (`components/hosts/bootstrap.py`): `<name>-gpu-setup` installs what is
missing (scheduling a reboot if the driver is new); `<name>-gpu-check` waits through that
reboot (a new boot ID, then `nvidia-smi` answering), within bounds, and checks the GPUs.
The set-up never replaces a working driver: a new `driverVersion` on a running host is the
driver roll's (`driver_upgrade.py`), drained and one host at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell

# The toolkit version read upstream (docs/upstream.md), as NVIDIA's Debian packages spell it.
TOOLKIT_VERSION = "1.20.0-1"
# The toolkit and its companions, installed at that version (nvidia-setup.sh's list).
TOOLKIT_PACKAGES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools", "libnvidia-container1")


def driver_packages(branch: str, flavour: str) -> list[str]:
    """What `ubuntu-drivers install nvidia:<branch>` hands apt-get where the archive has signed
    modules, as jammy's and noble's ubuntu-drivers-common do (UbuntuDrivers/detect.py
    get_desktop_package_list, docs/upstream.md): the driver and
    `linux-modules-nvidia-<branch>-<flavour>`, the flavour being the suffix of the kernel's
    installed `linux-image-<flavour>` metapackage. apt resolves the rest (the ABI-specific modules)."""
    return [f"nvidia-driver-{branch}", f"linux-modules-nvidia-{branch}-{flavour}"]


# NVIDIA's repository and its key, where no mirror replaces them.
TOOLKIT_KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
TOOLKIT_REPO_URL = "https://nvidia.github.io/libnvidia-container/stable/deb"


@dataclass
class GpuDriverArgs:
    gpu_count: int
    """GPUs the host must show."""
    install_driver: bool = True
    """False on machines that already have a driver."""
    driver_version: str | None = None
    """Driver branch, e.g. 535; the distribution's recommended one when None."""
    install_toolkit: bool = True
    """Install the NVIDIA container toolkit."""
    toolkit_repo: str | None = TOOLKIT_REPO_URL
    """The toolkit's apt repository; None where the host's mirror step configured it."""
    driver_from: str | None = None
    """While the driver roll (`driver_upgrade.py`) is asked for: the branch the host runs, which
    the set-up then accepts instead of replacing it outside the roll."""


def gpu_driver(name: str, host_name: str, target: SshTarget, args: GpuDriverArgs, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Register the set-up and check commands; return the check's report (`gpus=N`, `driver=V`)."""
    child = command_options(parent)
    setup = remote.Command(
        f"{name}-gpu-setup",
        connection=target.connection,
        create=shell.remote_command("nvidia-setup.sh", {
            "HOST_NAME": host_name,
            "INSTALL_DRIVER": str(args.install_driver).lower(),
            "DRIVER_VERSION": args.driver_version or "", "DRIVER_FROM": args.driver_from or "",
            "INSTALL_TOOLKIT": str(args.install_toolkit).lower(), "TOOLKIT_VERSION": TOOLKIT_VERSION,
            "TOOLKIT_REPO_URL": args.toolkit_repo or "", "TOOLKIT_KEY_URL": TOOLKIT_KEY_URL if args.toolkit_repo else "",
        }, sudo=target.sudo),
        add_previous_output_in_env=False,
        opts=child,
    )
    check = remote.Command(
        f"{name}-gpu-check",
        connection=target.after(setup.stdout).patient_connection,
        # The set-up's report carries the boot ID a scheduled reboot leaves behind.
        create=shell.remote_command("gpu-check.sh", {"HOST_NAME": host_name, "GPU_COUNT": str(args.gpu_count),
                                                     "SETUP_REPORT": setup.stdout}, sudo=target.sudo),
        add_previous_output_in_env=False,
        opts=child,
    )
    return check.stdout
