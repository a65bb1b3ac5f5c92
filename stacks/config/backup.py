"""`hybrid-ai:backup`: scheduled datastore snapshots, where they are kept, how many, and an
optional copy in S3-compatible object storage (OpenStack Swift's S3 API or any S3). Off by
default: it needs a host other than the control plane to keep the snapshots."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from stacks.config.types import ConfigKeyName, DnsLabel, Schema, strict

# systemd OnCalendar: a few words of digits, letters and *:,./~- (systemd-analyze calendar
# judges the rest on the host); never quotes, spaces inside words or newlines.
CALENDAR = r"[A-Za-z0-9*:,./~-]+( [A-Za-z0-9*:,./~-]+){0,3}"


class ObjectStorage(Schema):
    url: Annotated[str, strict(r"https://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
                               "not an endpoint and bucket; use https://<endpoint>[:port]/<bucket>, the bucket 3-63 lowercase letters, digits, '.', '-' (e.g. 'https://s3.example.org/hybrid-backups')")] = Field(
        description="Endpoint and bucket, path style: `https://<s3 endpoint>/<bucket>` (for OpenStack Swift, its S3 API endpoint).",
    )
    region: Annotated[str, strict(r"[a-z0-9-]{1,32}", "not a region; up to 32 lowercase letters, digits and '-', e.g. 'us-east-1'")] = Field(default="us-east-1", description="Region the request is signed for (SigV4).")
    credentials_config: ConfigKeyName = Field(
        default="backupObjectStorageCredentials",
        description="Name of the secret config key holding `ACCESS_KEY:SECRET_KEY` (set it with `pulumi config set --secret`).",
    )


class Backup(Schema):
    enabled: bool = Field(default=False, description="Take scheduled snapshots of the cluster datastore on the control plane.")
    host: DnsLabel | None = Field(default=None, description="The host that keeps the snapshots, trusted like the control plane (every snapshot holds every Secret): a cloud host other than a control plane, or an on-prem server with a public address; never a GPU host or a host in a NAT'd on-prem site. Required when enabled.")
    schedule: Annotated[str, strict(CALENDAR, "not a systemd calendar; up to four words of digits, letters and *:,./~-, e.g. '*-*-* 02:30:00' or 'daily'")] = Field(default="*-*-* 02:30:00", description="When to take a snapshot (systemd OnCalendar, UTC unless a zone is given).")
    keep: int = Field(default=14, ge=1, le=365, description="Snapshots kept on the backup host (newest first).")
    max_size_gb: int = Field(default=10, ge=1, le=1000, description="Largest snapshot the backup host accepts.")
    object_storage: ObjectStorage | None = Field(
        default=None, description="Also upload every snapshot here; its retention is the bucket's lifecycle rule (docs/operations.md, Backups)."
    )

    @model_validator(mode="after")
    def _needs_a_host(self) -> Backup:
        if self.enabled and self.host is None:
            raise ValueError("backup.host: required with `enabled: true`; name the host (not a control plane) that keeps the snapshots")
        return self
