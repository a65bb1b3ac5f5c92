"""Per-host WireGuard metrics: a systemd timer runs wg-metrics.sh, which writes each peer's
latest handshake and transfer into node-exporter's textfile directory (see
components/workloads/monitoring.py). Nothing here reads another host's outputs, so each host's step
runs in parallel with the others."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell

# node-exporter reads it as /host/root<dir> (charts/kube-prometheus-stack.yaml, extraArgs).
TEXTFILE_DIR = "/var/lib/node_exporter/textfile"
LIB_DIR = "/usr/local/lib/hybrid-ai"
UNIT_DIR = "/etc/systemd/system"


@dataclass
class MeshMetricsArgs:
    target: SshTarget
    """The host."""
    interface: str
    """The mesh's WireGuard interface."""
    interval_seconds: int
    """How often the timer writes the metrics."""


class MeshMetrics(pulumi.ComponentResource):
    """The metrics timer on one host."""

    changed: pulumi.Output[str]
    """The install script's report (`changed=none` on a re-run)."""

    def __init__(self, name: str, args: MeshMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:host:MeshMetrics", name, None, opts)
        paths = {"TEXTFILE_DIR": TEXTFILE_DIR, "LIB_DIR": LIB_DIR, "UNIT_DIR": UNIT_DIR}
        install = remote.Command(
            f"{name}-timer",
            connection=args.target.connection,
            create=shell.remote_command("wg-metrics-install.sh", paths | {
                "COLLECTOR": shell.script_text("wg-metrics.sh"), "VPN_IFACE": args.interface,
                "INTERVAL_SECONDS": str(args.interval_seconds),
            }, sudo=args.target.sudo),
            delete=shell.remote_command("wg-metrics-remove.sh", paths, sudo=args.target.sudo),
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.changed = install.stdout
        self.register_outputs({"changed": self.changed})
