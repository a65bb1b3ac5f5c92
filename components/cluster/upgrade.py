"""Rolling upgrades: control planes one at a time, then workers `max_unavailable` at a time, each
drained (PodDisruptionBudgets respected), upgraded, back Ready and uncordoned before the next
batch starts. Two rolls share this chain (`roll`) and its first and last steps (`drain`,
`uncordon`): the MicroK8s channel (here) and the NVIDIA driver (`driver_upgrade.py`).

Registered only while an upgrade is asked for (`cluster.upgrade.fromChannel`,
`hosts[].nvidia.fromDriverVersion`): a plain `up` has none of these steps, so its depth stays
what it was; during an upgrade the depth grows by three (channel) or four (driver) steps per
batch, and everything Kubernetes (the provider's kubeconfig, hence every workload, chart and CR)
and the verification wait for the rolls' end (`MicroK8sCluster.upgraded`): the seed's API
server restarts in its refresh and drains evict the pods being awaited. The driver roll starts
when the channel roll (if any) has ended.

Channel roll, per node: `<c>-<node>-upgrade-drain` (on the seed control plane),
`<c>-<node>-upgrade-refresh` (on the node), `<c>-<node>-upgrade-uncordon` (on the seed). Each
does nothing for a node that is done already (the node annotation `hybrid-ai/channel`, set by
the uncordon step), so a re-run after a failure resumes where the roll stopped. The drain step
also checks the maintenance window (`cluster.upgrade.window`) on the seed's clock before it
touches a node. A failed step fails its resource: Pulumi then runs none of the steps after it,
and its message names the node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.cluster.node import ClusterNode
from components.hosts.ssh import SshTarget, command_options
from components.kit import shell


@dataclass(frozen=True)
class MaintenanceWindow:
    spec: str
    """As configured, e.g. `Sat,Sun 02:00-06:00` (UTC; an end before the start runs past midnight)."""
    days: tuple[str, ...]
    """The days it opens on, as `date +%a` prints them in the C locale."""


@dataclass(frozen=True)
class UpgradeArgs:
    max_unavailable: int = 1
    """Workers upgraded at a time (control planes: always one)."""
    drain_timeout_seconds: int = 600
    """Bound of each node's drain."""
    window: MaintenanceWindow | None = None
    """When a node's roll may start; None: any time."""
    paused: bool = False
    """Hold the rolls: no roll step exists, the nodes keep what they run (accepted while a roll is asked for)."""


@dataclass(frozen=True)
class Mark:
    """What a roll records on each node it has finished: the annotation `hybrid-ai/<key>` = target."""
    key: str
    target: str
    words: str
    """The roll in words, for messages, e.g. `MicroK8s upgrade to 1.33/stable`."""


NodeSteps = Callable[["ClusterNode", SshTarget], pulumi.Output[str]]
"""Registers one node's steps, the first after the given seed connection (which resolves once
the batch before is back); returns what resolves when the node is back."""


def batches(nodes: Sequence[ClusterNode], max_unavailable: int) -> list[list[ClusterNode]]:
    """Control planes alone, in node order, then the workers in groups of `max_unavailable`."""
    planes = [[n] for n in nodes if n.control_plane]
    workers = [n for n in nodes if not n.control_plane]
    return planes + [workers[i:i + max_unavailable] for i in range(0, len(workers), max_unavailable)]


def roll(nodes: Sequence[ClusterNode], max_unavailable: int, seed: SshTarget, start: pulumi.Output[str], steps: NodeSteps) -> pulumi.Output[str]:
    """The chain: each batch starts once `start`, then the batch before, is back; resolves when the last one is."""
    done = start
    for batch in batches(nodes, max_unavailable):
        backs = [steps(node, seed.after(done)) for node in batch]
        done = pulumi.Output.all(*backs).apply(lambda _: "")
    return done


def step(
    name: str, connection: pulumi.Input[remote.ConnectionArgs], script: str, params: Mapping[str, pulumi.Input[str]], sudo: bool,
    opts: pulumi.ResourceOptions,
) -> remote.Command:
    """One step of a roll: `script` with `params` over `connection`. Roll steps print no secret,
    so stderr is logged; no earlier output goes into the environment."""
    return remote.Command(
        name,
        connection=connection,
        create=shell.remote_command(script, params, sudo=sudo),
        logging=remote.Logging.STDERR,
        add_previous_output_in_env=False,
        opts=opts,
    )


def drain(name: str, node: ClusterNode, seed: SshTarget, mark: Mark, args: UpgradeArgs, opts: pulumi.ResourceOptions) -> remote.Command:
    """`<name>-drain`, on the seed: the maintenance window, then cordon and drain (unless the node is done)."""
    window = args.window
    return step(f"{name}-drain", seed.connection, "microk8s-upgrade-drain.sh", {
        "NODE_NAME": node.name, "MARK": mark.key, "TARGET": mark.target, "ROLL": mark.words,
        "DRAIN_TIMEOUT_S": str(args.drain_timeout_seconds),
        "WINDOW": window.spec if window else "", "WINDOW_DAYS": " ".join(window.days) if window else "",
    }, seed.sudo, opts)


def uncordon(
    name: str, node: ClusterNode, seed: SshTarget, mark: Mark, since: pulumi.Output[str], opts: pulumi.ResourceOptions, kubelet_minor: str = "",
) -> pulumi.Output[str]:
    """`<name>-uncordon`, on the seed: wait until the node's kubelet has posted since `since`, uncordon, mark it done."""
    return step(f"{name}-uncordon", seed.connection, "microk8s-upgrade-uncordon.sh", {
        "NODE_NAME": node.name, "MARK": mark.key, "TARGET": mark.target, "ROLL": mark.words,
        "SINCE": since, "KUBELET_MINOR": kubelet_minor,
    }, seed.sudo, opts).stdout


def rolling_upgrade(
    name: str, parent: pulumi.Resource, nodes: Sequence[ClusterNode], channel: str, seed: SshTarget,
    start: pulumi.Output[str], args: UpgradeArgs,
) -> pulumi.Output[str]:
    """The channel roll, starting once `start` resolves (every node Ready); resolves when the last batch is back."""
    opts = command_options(parent)
    mark = Mark("channel", channel, f"MicroK8s upgrade to {channel}")
    minor = re.sub(r"[-/].*", "", channel)  # 1.33/stable, 1.33-strict/stable -> 1.33

    def steps(node: ClusterNode, after: SshTarget) -> pulumi.Output[str]:
        prefix = f"{name}-{node.name}-upgrade"
        drained = drain(prefix, node, after, mark, args, opts)
        target = node.target.after(drained.stdout)
        refresh = step(f"{prefix}-refresh", target.connection, "microk8s-upgrade-refresh.sh",
                       {"HOST_NAME": node.name, "CHANNEL": channel}, target.sudo, opts)
        return uncordon(prefix, node, after.after(refresh.stdout), mark, refresh.stdout.apply(refreshed_at), opts, minor)

    return roll(nodes, args.max_unavailable, seed, start, steps)


def stamp(stdout: str, key: str) -> str:
    """A step's `<key>=<epoch>` line (its host's clock); "0" (no lower bound on the heartbeat,
    the other checks still hold) when it printed none."""
    found = re.search(rf"^{re.escape(key)}=([0-9]+)$", stdout, re.M)
    return found.group(1) if found else "0"


def refreshed_at(stdout: str) -> str:
    """The refresh step's `refreshed_at=<epoch>`."""
    return stamp(stdout, "refreshed_at")
