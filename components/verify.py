"""Post-deploy verification as part of `pulumi up`: a failed check fails the update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

from components import shell
from components.ssh import COMMAND_TIMEOUTS, SshTarget


@dataclass
class ClusterVerificationArgs:
    target: SshTarget
    """The control plane."""
    nodes: Mapping[str, str]
    """Node name -> the VPN address it must be Ready on."""
    gpus: Mapping[str, int]
    """GPU node -> nvidia.com/gpu it must advertise (GPUs x time-slicing replicas)."""
    wait_for: Sequence[pulumi.Output[Any]]
    """What must be deployed before checking (workloads, plugin, ingress)."""
    probe_url: str | None = None
    """URL of the public API to call through the ingress."""
    ingress_address: pulumi.Input[str] | None = None
    """Public address of an ingress node."""


class ClusterVerification(pulumi.ComponentResource):
    """Nodes Ready on their VPN addresses, GPU capacity as configured, the API answering."""

    report: pulumi.Output[str]
    """What was verified."""

    def __init__(self, name: str, args: ClusterVerificationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:cluster:Verification", name, None, opts)
        target = args.target.after(*args.wait_for)
        check = remote.Command(
            f"{name}-check",
            connection=target.connection,
            create=shell.remote_command("verify-cluster.sh", {
                "EXPECTED_NODES": " ".join(f"{n}={ip}" for n, ip in sorted(args.nodes.items())),
                "EXPECTED_GPUS": " ".join(f"{n}={c}" for n, c in sorted(args.gpus.items())),
                "PROBE_URL": args.probe_url or "",
                "INGRESS_ADDRESS": args.ingress_address or "",
            }, sudo=target.sudo),
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, custom_timeouts=COMMAND_TIMEOUTS),
        )
        self.report = check.stdout
        self.register_outputs({"report": self.report})
