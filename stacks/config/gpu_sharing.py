"""`hybrid-ai:timeSlicing`: GPU sharing profiles."""

from __future__ import annotations

from pydantic import Field

from stacks.config.types import (
    DnsLabel,
    Schema,
)


class TimeSlicingProfile(Schema):
    name: DnsLabel = Field(description="Profile name; nodes select it by label `nvidia.com/device-plugin.config`.")
    replicas: int = Field(ge=1, description="Pods that may share one GPU.")


class TimeSlicing(Schema):
    profiles: list[TimeSlicingProfile] = Field(default_factory=list, description="One profile per GPU kind.")
    default_profile: DnsLabel | None = Field(default=None, description="Profile for GPU nodes that name none.")
    max_replicas: int = Field(default=8, ge=1, le=64, description="Upper bound on any profile's replicas (no memory isolation between sharers).")
