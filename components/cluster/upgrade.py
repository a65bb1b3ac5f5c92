"""Rolling upgrade of the MicroK8s channel: control planes one at a time, then workers
`max_unavailable` at a time, each drained (PodDisruptionBudgets respected), refreshed, back
Ready and uncordoned before the next batch starts.

Registered only while an upgrade is asked for (`cluster.upgrade.fromChannel`): a plain `up`
has none of these steps, so its depth stays what it was; during an upgrade the depth grows by
three steps per batch, and everything Kubernetes (the provider's kubeconfig, hence every
workload, chart and CR) and the verification wait for the roll's end (`MicroK8sCluster.upgraded`):
the seed's API server restarts in its refresh and drains evict the pods being awaited. Per node: `<c>-<node>-upgrade-drain` (on the seed control plane),
`<c>-<node>-upgrade-refresh` (on the node), `<c>-<node>-upgrade-uncordon` (on the seed). Each
does nothing for a node that already runs the channel (the node annotation
`hybrid-ai/channel`, set by the uncordon step), so a re-run after a failure resumes where the
roll stopped. A failed step fails its resource: Pulumi then runs none of the steps after it,
and its message names the node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell

if TYPE_CHECKING:
    from components.cluster.microk8s import ClusterNode


@dataclass(frozen=True)
class UpgradeArgs:
    max_unavailable: int = 1
    """Workers upgraded at a time (control planes: always one)."""
    drain_timeout_seconds: int = 600
    """Bound of each node's drain."""


def batches(nodes: Sequence[ClusterNode], max_unavailable: int) -> list[list[ClusterNode]]:
    """Control planes alone, in node order, then the workers in groups of `max_unavailable`."""
    planes = [[n] for n in nodes if n.control_plane]
    workers = [n for n in nodes if not n.control_plane]
    return planes + [workers[i:i + max_unavailable] for i in range(0, len(workers), max_unavailable)]


def rolling_upgrade(
    name: str, parent: pulumi.Resource, nodes: Sequence[ClusterNode], channel: str, seed: SshTarget,
    ready: Mapping[str, pulumi.Output[str]], args: UpgradeArgs,
) -> pulumi.Output[str]:
    """The roll, starting once every node is Ready; resolves when the last batch is back."""
    opts = command_options(parent)
    done: pulumi.Output[str] = pulumi.Output.all(*ready.values()).apply(lambda _: "")
    for batch in batches(nodes, args.max_unavailable):
        backs = [_node(name, node, channel, seed.after(done), args, opts) for node in batch]
        done = pulumi.Output.all(*backs).apply(lambda _: "")
    return done


def refreshed_at(stdout: str) -> str:
    """The refresh step's `refreshed_at=<epoch>` (its host's clock); "0" (no lower bound on the
    heartbeat, the version check still holds) when it printed none."""
    found = re.search(r"^refreshed_at=([0-9]+)$", stdout, re.M)
    return found.group(1) if found else "0"


def _node(name: str, node: ClusterNode, channel: str, seed: SshTarget, args: UpgradeArgs, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    drain = remote.Command(
        f"{name}-{node.name}-upgrade-drain",
        connection=seed.connection,
        create=shell.remote_command("microk8s-upgrade-drain.sh", {
            "NODE_NAME": node.name, "CHANNEL": channel, "DRAIN_TIMEOUT_S": str(args.drain_timeout_seconds),
        }, sudo=seed.sudo),
        logging=remote.Logging.STDERR,
        add_previous_output_in_env=False,
        opts=opts,
    )
    target = node.target.after(drain.stdout)
    refresh = remote.Command(
        f"{name}-{node.name}-upgrade-refresh",
        connection=target.connection,
        create=shell.remote_command("microk8s-upgrade-refresh.sh", {"HOST_NAME": node.name, "CHANNEL": channel}, sudo=target.sudo),
        logging=remote.Logging.STDERR,
        add_previous_output_in_env=False,
        opts=opts,
    )
    back = seed.after(refresh.stdout)
    uncordon = remote.Command(
        f"{name}-{node.name}-upgrade-uncordon",
        connection=back.connection,
        create=shell.remote_command("microk8s-upgrade-uncordon.sh", {
            "NODE_NAME": node.name, "CHANNEL": channel, "REFRESHED_AT": refresh.stdout.apply(refreshed_at),
        }, sudo=back.sudo),
        logging=remote.Logging.STDERR,
        add_previous_output_in_env=False,
        opts=opts,
    )
    return uncordon.stdout
