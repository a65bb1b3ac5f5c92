"""`hybrid-ai:timeSlicing`: GPU sharing profiles (time-slicing or MPS), each with the memory of
one GPU of its kind so that models' `gpuMemory` budgets can be checked against it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stacks.config.types import (
    DnsLabel,
    Memory,
    Schema,
)


class TimeSlicingProfile(Schema):
    name: DnsLabel = Field(description="Profile name; nodes select it by label `nvidia.com/device-plugin.config`.")
    replicas: int = Field(ge=1, description="Pods that may share one GPU; 1 gives each pod a whole GPU (exclusive).")
    sharing: Literal["time-slicing", "mps"] = Field(default="time-slicing", description="How the pods share a GPU: `time-slicing` (no memory isolation) or `mps` (the device plugin's MPS daemon caps each pod at `memory` / `replicas`; needs `replicas` >= 2). See docs/models.md.")
    memory: Memory | None = Field(default=None, description="Memory of one GPU of this kind (e.g. `24Gi`); each of the `replicas` pods gets `memory` / `replicas`. Needed where a model declares `gpuMemory`.")

    @model_validator(mode="after")
    def _mps_shares(self) -> TimeSlicingProfile:
        if self.sharing == "mps" and self.replicas < 2:
            raise ValueError("MPS sharing needs `replicas` of 2 or more (the device plugin refuses fewer); use `replicas: 1` without `sharing` for whole GPUs")
        return self


class TimeSlicing(Schema):
    profiles: list[TimeSlicingProfile] = Field(default_factory=list, description="One profile per GPU kind.")
    default_profile: DnsLabel | None = Field(default=None, description="Profile for GPU nodes that name none.")
    max_replicas: int = Field(default=8, ge=1, le=64, description="Upper bound on any profile's replicas (no memory isolation between sharers).")
