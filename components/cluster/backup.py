"""Scheduled snapshots of the cluster datastore, kept on another host (issue 15 item 4).

`<name>-schedule` runs on the control plane: it makes the backup SSH key there (the private
key never leaves that host; only the public key is printed), writes the runner (the composed
datastore-backup.sh), the backup host's pinned host key, object storage credentials (from
stdin, to a root-only file) and a systemd service + timer. `<name>-store` runs on the backup
host: it authorises exactly that public key, from the control plane's VPN address only, for a
forced command that stores one snapshot and prunes old ones. Restore: docs/operations.md, Restore the
datastore (datastore-restore.sh).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.vpn.wireguard_check import HostOutputError

STORE_USER = "hybridai-backup"
BACKUP_KEY = "/root/.ssh/hybrid-ai-backup"
STORE_DIR = "/var/lib/hybrid-ai/backups"
SHEBANG = "#!/usr/bin/env bash"
_ED25519 = re.compile(r"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}")


@dataclass
class DatastoreBackupArgs:
    control_plane: SshTarget
    """Where the snapshots are taken (MicroK8s running)."""
    control_plane_address: str
    """The control plane's VPN address: the only source the backup key is accepted from."""
    store: SshTarget
    """The host that keeps the snapshots (never a control plane)."""
    store_address: str
    """The store's VPN address, dialled by the control plane."""
    schedule: str
    """systemd OnCalendar expression (validated by the config)."""
    keep: int
    """Snapshots kept on the store."""
    max_bytes: int
    """Largest snapshot the store accepts."""
    s3_url: str | None = None
    """`https://<endpoint>/<bucket>` to upload every snapshot to, if any."""
    s3_region: str = "us-east-1"
    s3_credentials: pulumi.Input[str] | None = None
    """`ACCESS:SECRET`, a Pulumi secret: sent on stdin, never in a command line."""


def embedded(script: str, params: dict[str, str]) -> str:
    """A composed script to be installed by another one: without its shebang lines, so the
    outer command's parameters still read as parameters (the render and diff find them before
    the first shebang); the installing script writes one shebang on top."""
    return "\n".join(line for line in shell.compose(script, params).splitlines() if line != SHEBANG) + "\n"


def backup_public_key(step: str, printed: str) -> str:
    """The public key the schedule step printed last; anything else fails naming the step."""
    last = printed.strip().splitlines()[-1] if printed.strip() else ""
    if not _ED25519.fullmatch(last):
        raise HostOutputError(f"{step}: the control plane printed no ed25519 public key for the backup; see that step's log")
    return last


class DatastoreBackup(pulumi.ComponentResource):
    public_key: pulumi.Output[str]
    """The control plane's backup public key (authorised on the store)."""
    stored: pulumi.Output[str]
    """The store step's report; resolves once the store accepts the key."""

    def __init__(self, name: str, args: DatastoreBackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:cluster:DatastoreBackup", name, None, opts)
        receiver = embedded("backup-receive.sh", {
            "BACKUP_STORE_DIR": STORE_DIR, "BACKUP_KEEP": str(args.keep), "BACKUP_MAX_BYTES": str(args.max_bytes),
        })
        runner = embedded("datastore-backup.sh", {
            "BACKUP_TARGET": f"{STORE_USER}@{args.store_address}", "BACKUP_SSH_KEY": BACKUP_KEY,
            "BACKUP_S3_URL": args.s3_url or "", "BACKUP_S3_REGION": args.s3_region,
        })
        known = pulumi.Output.from_input(args.store.host_key).apply(lambda key: f"{args.store_address} {key}")
        cp = args.control_plane
        schedule = remote.Command(
            f"{name}-schedule",
            connection=cp.connection,
            create=shell.remote_command("datastore-backup-install.sh", {
                "BACKUP_RUNNER": runner, "BACKUP_SCHEDULE": args.schedule, "BACKUP_KNOWN_HOSTS_LINE": known,
                "BACKUP_SSH_KEY": BACKUP_KEY, "BACKUP_S3": "yes" if args.s3_url else "no",
            }, sudo=cp.sudo),
            delete=shell.remote_command("datastore-backup-remove.sh", {"BACKUP_SSH_KEY": BACKUP_KEY}, sudo=cp.sudo),
            stdin=pulumi.Output.secret(args.s3_credentials) if args.s3_credentials is not None else "",
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.public_key = schedule.stdout.apply(lambda out: backup_public_key(f"{name}-schedule", out))
        store = remote.Command(
            f"{name}-store",
            connection=args.store.connection,
            create=shell.remote_command("backup-receiver-install.sh", {
                "BACKUP_RECEIVER": receiver, "BACKUP_PUBLIC_KEY": self.public_key,
                "BACKUP_FROM": args.control_plane_address, "BACKUP_STORE_DIR": STORE_DIR,
            }, sudo=args.store.sudo),
            delete=shell.remote_command("backup-receiver-remove.sh", {"BACKUP_STORE_DIR": STORE_DIR}, sudo=args.store.sudo),
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.stored = store.stdout
        self.register_outputs({"publicKey": self.public_key})
