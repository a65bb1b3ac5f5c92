"""Rolling NVIDIA driver upgrade: the GPU hosts whose `nvidia.fromDriverVersion` is set, in the
channel roll's order and batches (`upgrade.roll`), each drained, moved to the new branch,
rebooted, waited for and uncordoned before the next batch starts.

Why a roll of its own: a host's `<host>-gpu-setup` never replaces a working driver (it accepts
the old branch only while this roll is asked for), so a changed `driverVersion` cannot reinstall
and reboot every GPU host at once; and a new host, with no workloads yet, gets the configured
branch straight from its set-up, without this roll.

Per node: `<c>-<node>-driver-drain` (on the seed control plane: maintenance window, cordon,
drain), `<c>-<node>-driver-install` (on the node: `nvidia-setup.sh` with REPLACE_DRIVER, which
installs `nvidia-driver-<version>` when an older branch runs and schedules the reboot),
`<c>-<node>-driver-check` (on the node, through the reboot: `gpu-check.sh` waits, bounded, for
a new boot ID, then for `nvidia-smi` answering on the new branch with every GPU),
`<c>-<node>-driver-uncordon` (on the seed: the node's kubelet has posted since then, Ready;
uncordon; the annotation `hybrid-ai/nvidia-driver`). A node already marked is skipped by every
step, so a re-run resumes where a failure stopped the roll.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.cluster.node import ClusterNode
from components.cluster.node import DriverUpgrade as DriverUpgrade  # importable from here as before
from components.cluster.nvidia import TOOLKIT_VERSION
from components.cluster.upgrade import Mark, UpgradeArgs, drain, roll, stamp, step, uncordon
from components.hosts.ssh import SshTarget, command_options


def driver_roll(
    name: str, parent: pulumi.Resource, nodes: Sequence[ClusterNode], seed: SshTarget, start: pulumi.Output[str], args: UpgradeArgs,
) -> pulumi.Output[str]:
    """The roll over the nodes with a `driver_upgrade`, starting once `start` resolves."""
    opts = command_options(parent)

    def steps(node: ClusterNode, after: SshTarget) -> pulumi.Output[str]:
        up = node.driver_upgrade
        assert up is not None
        prefix = f"{name}-{node.name}-driver"
        mark = Mark("nvidia-driver", up.version, f"NVIDIA driver upgrade to {up.version}")
        drained = drain(prefix, node, after, mark, args, opts)
        target = node.target.after(drained.stdout)
        install = step(f"{prefix}-install", target.connection, "nvidia-setup.sh", {
            "HOST_NAME": node.name, "INSTALL_DRIVER": "true", "DRIVER_VERSION": up.version, "REPLACE_DRIVER": "true",
            "INSTALL_TOOLKIT": "false", "TOOLKIT_VERSION": TOOLKIT_VERSION,
        }, target.sudo, opts)
        # Patient: the install step's reboot refuses logins until the new boot's sshd is up.
        check = step(f"{prefix}-check", target.after(install.stdout).patient_connection, "gpu-check.sh", {
            "HOST_NAME": node.name, "GPU_COUNT": str(up.gpu_count), "SETUP_REPORT": install.stdout,
            "DRIVER_BRANCH": up.version.split("-")[0], "ROLL": mark.words,
        }, target.sudo, opts)
        return uncordon(prefix, node, after.after(check.stdout), mark, check.stdout.apply(lambda out: stamp(out, "back_at")), opts)

    return roll([n for n in nodes if n.driver_upgrade is not None], args.max_unavailable, seed, start, steps)
