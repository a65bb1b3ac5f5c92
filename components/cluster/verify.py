"""Post-deploy verification as part of `pulumi up`: a failed check fails the update.

`<name>-check` waits until every labelled node is Ready on its VPN address and advertises
its expected GPU capacity, and the public API answers through the Gateway. Each node's
expectations sit on its own labels, so adding a node changes nothing in the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.kit.kube import GPU_CAPACITY_LABEL, VPN_ADDRESS_LABEL


@dataclass
class ClusterVerificationArgs:
    target: SshTarget
    """The control plane."""
    node_ready: Mapping[str, pulumi.Output[Any]]
    """Per node: resolves once it joined."""
    wait_for: Sequence[pulumi.Output[Any]]
    """What must be deployed before checking (workloads, plugin, Gateway)."""
    probe_url: str | None = None
    """URL of the public API to call through the Gateway."""
    ingress_address: pulumi.Input[str] | None = None
    """Public address of an ingress node (where the Gateway listens)."""
    probe_ca: str | None = None
    voters: int = 1
    """Control planes; from three on, high availability must be formed."""
    """PEM roots the probe trusts instead of the system store (Let's Encrypt staging)."""


STAGING_ROOTS = Path(__file__).parent / "certs" / "letsencrypt-staging-roots.pem"


def staging_roots() -> str:
    """Let's Encrypt's staging roots (see components/certs/README.md for their origin)."""
    return STAGING_ROOTS.read_text()


class ClusterVerification(pulumi.ComponentResource):
    """GPU capacity per GPU node, nodes Ready on their VPN addresses, the API answering."""

    report: pulumi.Output[str]
    """What was verified."""

    def __init__(self, name: str, args: ClusterVerificationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:cluster:Verification", name, None, opts)
        child = command_options(self)
        target = args.target.after(*args.node_ready.values(), *args.wait_for)
        check = remote.Command(
            f"{name}-check",
            connection=target.connection,
            create=shell.remote_command("verify-cluster.sh", {
                "PROBE_URL": args.probe_url or "",
                "INGRESS_ADDRESS": args.ingress_address or "",
                "PROBE_CA": args.probe_ca or "",  # public roots: a parameter, not stdin (kept for secrets)
                "VOTERS": str(args.voters),
                "VPN_LABEL": VPN_ADDRESS_LABEL,
                "CAPACITY_LABEL": GPU_CAPACITY_LABEL,
            }, sudo=target.sudo),
            add_previous_output_in_env=False,
            opts=child,
        )
        self.report = check.stdout
        self.register_outputs({"report": self.report})
