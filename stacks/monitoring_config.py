"""The `monitoring` config section (kept apart from stacks/config.py, which imports it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Monitoring(BaseModel):
    """Prometheus, Grafana, dcgm-exporter and the mesh's handshake metrics."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    enabled: bool = Field(
        default=False,
        description="Install kube-prometheus-stack, dcgm-exporter, the alerts and dashboards, and the WireGuard metrics timer "
        "on every host. Off unless set: it needs about 1.5 GB of memory on the cloud nodes.")
    retention: str = Field(default="7d", pattern=r"^[1-9][0-9]{0,3}[hdw]$", description="How long Prometheus keeps samples, e.g. `7d`.")
    storage_size: str = Field(default="10Gi", pattern=r"^[1-9][0-9]{0,4}(Mi|Gi)$", description="Prometheus' volume; samples are dropped before it fills (85%).")
    storage_class: str = Field(default="microk8s-hostpath", pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$",
                               description="Storage class of the Prometheus and Grafana volumes.")
    grafana_storage_size: str = Field(default="1Gi", pattern=r"^[1-9][0-9]{0,4}(Mi|Gi)$", description="Grafana's volume (its database).")
    mesh_interval_seconds: int = Field(default=30, ge=10, le=300, description="How often each host writes its WireGuard peers' handshake age and transfer.")
