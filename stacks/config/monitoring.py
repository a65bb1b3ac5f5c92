"""The `monitoring` config section."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stacks.config.types import Schema, StorageClassName, strict

Duration = Annotated[str, strict(r"[1-9][0-9]{0,3}[hdw]", "not a retention; use hours, days or weeks, e.g. '7d' or '2w'")]
Size = Annotated[str, strict(r"[1-9][0-9]{0,4}(Mi|Gi)", "not a volume size; use Mi or Gi, e.g. '10Gi'")]


class Monitoring(Schema):
    """Prometheus, Grafana, dcgm-exporter and the mesh's handshake metrics."""

    enabled: bool = Field(
        default=False,
        description="Install kube-prometheus-stack, dcgm-exporter, the alerts and dashboards, and the WireGuard metrics timer "
        "on every cluster host. Off unless set: it needs 1-2 GB of memory on the cloud nodes (Prometheus alone up to 1.5 GiB).")
    retention: Duration = Field(default="7d", description="How long Prometheus keeps samples, e.g. `7d`.")
    storage_size: Size = Field(default="10Gi", description="Prometheus' volume; samples are dropped before it fills (85%).")
    storage_class: StorageClassName = Field(default="microk8s-hostpath", description="Storage class of the Prometheus and Grafana volumes.")
    grafana_storage_size: Size = Field(default="1Gi", description="Grafana's volume (its database).")
    mesh_interval_seconds: int = Field(default=30, ge=10, le=300, description="How often each host writes its WireGuard peers' handshake age and transfer.")
