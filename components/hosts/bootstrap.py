"""A host's bootstrap: base OS set-up (`base-bootstrap.sh`) and, on GPU hosts, the NVIDIA
driver and container toolkit (`components/nvidia.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components import shell
from components.host import HostNode
from components.nvidia import GpuDriverArgs, gpu_driver
from components.ssh import SshTarget, command_options

BASE_PACKAGES = "wireguard-tools iproute2 iptables ca-certificates curl"


@dataclass
class HostBootstrapArgs:
    host: HostNode
    """The host to set up."""
    packages: str = BASE_PACKAGES
    """Debian packages the later steps need."""
    gpu: GpuDriverArgs | None = None
    """NVIDIA set-up, for GPU hosts."""


class HostBootstrap(pulumi.ComponentResource):
    """Packages, forwarding and bridge sysctls, time sync; the GPU driver on GPU hosts."""

    changed: pulumi.Output[str]
    """The base script's report of what it changed (`changed=none` on a re-run)."""
    target: SshTarget
    """Connection for later steps: resolves once the base bootstrap is done."""
    gpu_ready: pulumi.Output[str] | None
    """On GPU hosts: resolves once `nvidia-smi` shows the configured GPUs."""

    def __init__(self, name: str, args: HostBootstrapArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:host:Bootstrap", name, None, opts)
        host = args.host
        sudo = host.target.sudo
        base = remote.Command(
            f"{name}-base",
            connection=host.target.connection,
            create=shell.remote_command("base-bootstrap.sh", {"HOST_NAME": host.host_name, "PACKAGES": args.packages}, sudo=sudo),
            delete=shell.remote_command("base-teardown.sh", {}, sudo=sudo),
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.changed = base.stdout
        self.target = host.target.after(base.stdout)
        self.gpu_ready = None if args.gpu is None else gpu_driver(name, host.host_name, self.target, args.gpu, self)
        self.register_outputs({"changed": self.changed, "gpuReady": self.gpu_ready})
