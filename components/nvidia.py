"""NVIDIA driver and container toolkit on a GPU host, with an explicit, bounded reboot wait."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components import shell
from components.ssh import COMMAND_TIMEOUTS, SshTarget


@dataclass
class GpuDriverArgs:
    target: SshTarget
    """The GPU host (after its base bootstrap)."""
    host_name: str
    """For messages."""
    gpu_count: int
    """GPUs the host must show."""
    install_driver: bool = True
    """False on machines that already have a driver."""
    driver_version: str | None = None
    """Driver branch, e.g. 535; the distribution's recommended one when None."""
    install_toolkit: bool = True
    """Install the NVIDIA container toolkit."""


class GpuDriver(pulumi.ComponentResource):
    """`<name>-setup` installs what is missing (scheduling a reboot if the driver is new);
    `<name>-check` waits through that reboot, within a bound, until `nvidia-smi` answers."""

    ready: pulumi.Output[str]
    """`gpus=N` and `driver=V` as the host reports them; resolves once the GPU works."""

    def __init__(self, name: str, args: GpuDriverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:gpu:Driver", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, custom_timeouts=COMMAND_TIMEOUTS)
        setup = remote.Command(
            f"{name}-setup",
            connection=args.target.connection,
            create=shell.remote_command("nvidia-setup.sh", {
                "HOST_NAME": args.host_name,
                "INSTALL_DRIVER": str(args.install_driver).lower(),
                "DRIVER_VERSION": args.driver_version or "",
                "INSTALL_TOOLKIT": str(args.install_toolkit).lower(),
            }, sudo=args.target.sudo),
            add_previous_output_in_env=False,
            opts=child,
        )
        check = remote.Command(
            f"{name}-check",
            connection=args.target.after(setup.stdout).patient_connection,
            create=shell.remote_command("gpu-check.sh", {"HOST_NAME": args.host_name, "GPU_COUNT": str(args.gpu_count)}, sudo=args.target.sudo),
            add_previous_output_in_env=False,
            opts=child,
        )
        self.ready = check.stdout
        self.register_outputs({"ready": self.ready})
