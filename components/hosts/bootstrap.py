"""A host's bootstrap: base OS set-up (`base-bootstrap.sh`), then an optional extra step the
stack wiring passes in (on GPU hosts the cluster layer's NVIDIA driver and container toolkit,
`components/cluster/nvidia.py`), registered as this component's child. The hosts layer does
not import the layers above it: it only calls the step it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.host import HostNode
from components.hosts.mirrors import MirrorSetup
from components.hosts.ssh import SshTarget, command_options
from components.kit import shell

BASE_PACKAGES = "wireguard-tools iproute2 iptables ca-certificates curl"

ExtraStep = Callable[[str, SshTarget, pulumi.Resource], pulumi.Output[str]]
"""Registers more set-up after the base one: called with (this bootstrap's name, the
connection that resolves once the base is done, this bootstrap as parent); returns a report
that resolves when the step is done."""


@dataclass
class HostBootstrapArgs:
    host: HostNode
    """The host to set up."""
    packages: str = BASE_PACKAGES
    """Debian packages the later steps need."""
    gpu: ExtraStep | None = None
    """The GPU driver set-up, for GPU hosts (built by the stack wiring from the cluster layer)."""
    mirrors: MirrorSetup | None = None
    """The host's mirrors: checked, then used, before anything is installed (None: the internet)."""


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
        first = host.target
        if args.mirrors is not None:
            mirrors = remote.Command(
                f"{name}-mirrors",
                connection=host.target.connection,
                create=shell.remote_command("mirrors.sh", args.mirrors.params, sudo=sudo),
                delete=shell.remote_command("mirrors-teardown.sh", {}, sudo=sudo),
                stdin=args.mirrors.stdin,
                # Registry credentials on stdin: only stderr is logged (the script prints no secret, and its
                # stdout, `changed=...`, stays a plain output: later steps' addresses wait on it).
                logging=remote.Logging.STDERR if args.mirrors.stdin is not None else remote.Logging.STDOUT_AND_STDERR,
                add_previous_output_in_env=False,
                opts=command_options(self),
            )
            first = host.target.after(mirrors.stdout)
        base = remote.Command(
            f"{name}-base",
            connection=first.connection,
            create=shell.remote_command("base-bootstrap.sh", {"HOST_NAME": host.host_name, "PACKAGES": args.packages}, sudo=sudo),
            delete=shell.remote_command("base-teardown.sh", {}, sudo=sudo),
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.changed = base.stdout
        self.target = host.target.after(base.stdout)
        self.gpu_ready = None if args.gpu is None else args.gpu(name, self.target, self)
        self.register_outputs({"changed": self.changed, "gpuReady": self.gpu_ready})
