"""cluster-agent and dqlite from the control planes only (`agent-guard-apply.sh`).

A join hands every node the control plane's cluster-agent callback token, and with it
cluster-agent's `/cluster/api/v1.0/configure` rewrites any service's arguments and restarts it
(kube-apiserver with `--authorization-mode=AlwaysAllow`: cluster-admin for anyone). So on every
control plane, before MicroK8s is installed (it listens on 25000 and 19001 at once), an nftables
table of its own lets TCP 25000 and 19001 in only from the control planes' VPN addresses and the
loopback, and cluster-agent's alone from a joining node's address while its join runs: the
register step adds it to the set `joiners` (with the token's lifetime as timeout), the ready step
removes it. A worker's join needs cluster-agent only, and a joining control plane is among the
control planes already; a join token also gets dqlite's cluster certificate (cluster-agent
answers any holder as a control plane if asked: docs/security.md), so dqlite stays shut to joiners.

cluster-agent 1.32 also takes a whitespace-only token (docs/upstream.md), so this table is the
boundary, and a source it admits needs no token. A pod on one control plane reaching another's
25000 leaves masqueraded to its node's VPN address (Calico's natOutgoing), which the other admits:
each control plane's table also drops forwarded traffic from the pod network to these ports (the
forward hook sees the pod's address before the masquerade).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget
from components.kit import shell

AGENT_PORTS = (25000, 19001)
"""cluster-agent, dqlite (MicroK8s 1.32)."""
JOIN_PORTS = (25000,)
"""What a joining node's address reaches while its join runs: cluster-agent."""


def agent_guard(name: str, target: SshTarget, control_planes: Sequence[str], pod_cidr: str,
                opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """`<name>-agent-guard` on one control plane; its report, once applied."""
    params = {"CONTROL_PLANES": " ".join(control_planes), "PORTS": " ".join(str(p) for p in AGENT_PORTS),
              "JOIN_PORTS": " ".join(str(p) for p in JOIN_PORTS), "POD_CIDR": pod_cidr}
    guard = remote.Command(
        f"{name}-agent-guard",
        connection=target.connection,
        create=shell.remote_command("agent-guard-apply.sh", params, sudo=target.sudo),
        delete=shell.remote_command("agent-guard-remove.sh", {}, sudo=target.sudo),
        add_previous_output_in_env=False,
        opts=opts,
    )
    return guard.stdout
