"""What a model service is made of: the arguments of `ModelService` and of its pod (probes,
cache, security), apart from the components that turn them into Kubernetes objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi


@dataclass(frozen=True)
class ProbeTiming:
    """When the probes run. Liveness checks half as often as readiness: a restart costs a model
    load, a removal from the Service only some requests."""

    initial_delay_seconds: int = 30
    period_seconds: int = 10
    failure_threshold: int = 3
    startup_seconds: int = 600
    """The startup probe's budget (model loading) before the kubelet restarts the container."""


@dataclass(frozen=True)
class CacheVolume:
    """A claim of the model's own for downloaded weights, kept across restarts."""

    mount_path: str
    """Where the container sees it."""
    size: str
    storage_class: str


@dataclass(frozen=True)
class Security:
    """The escape hatch from the restricted container defaults. Never root, never privileged:
    the namespace's Pod Security `restricted` would refuse both; a writable root filesystem
    it admits."""

    writable_root_filesystem: bool = False


@dataclass(frozen=True)
class Peer:
    """A service this model calls."""

    name: str
    port: int


@dataclass(frozen=True)
class PublicRoute:
    host: str
    """Public host name the route matches."""
    path: str
    """Path prefix routed to the model."""
    gateway: pulumi.Input[str]
    """Name of the Gateway (same namespace) the HTTPRoute attaches to."""
    listener: str = "http"
    """The Gateway's listener (sectionName): "https" when served over TLS."""
    data_plane_namespace: str = "traefik"
    """Where the Gateway's data plane runs (allowed in)."""
    api_prefix: str | None = None
    """Route only `path` + this prefix, forwarded as the prefix alone (`/llm/v1/x` as `/v1/x`):
    a server whose API lives under it beside routes that must not be public."""


@dataclass
class ModelServiceArgs:
    namespace: pulumi.Input[str]
    """Namespace (restricted Pod Security)."""
    image: str
    """Container image, pinned."""
    port: int
    """Container port."""
    replicas: int = 1
    """Replicas (the minimum when autoscaled)."""
    cpu: str = "250m"
    """CPU request."""
    cpu_limit: str = "2"
    """CPU limit."""
    memory: str = "512Mi"
    """Memory request and limit."""
    gpus: int = 0
    """nvidia.com/gpu per pod."""
    placement: Literal["cloud", "gpu"] = "cloud"
    """Cloud nodes or GPU nodes."""
    probe: tuple[Literal["http", "tcp"], str] = ("http", "/healthz")
    """Liveness/readiness probe: HTTP path, or a TCP connect."""
    run_as: int = 10001
    """UID (and GID) of the container."""
    writable_paths: Sequence[str] = ("/tmp",)
    """Paths given an emptyDir (the root filesystem is read-only)."""
    args: Sequence[str] = ()
    """Container arguments."""
    talks_to: Sequence[Peer] = ()
    """Services this model calls (network policies)."""
    public: PublicRoute | None = None
    """Route from the ingress; also gives the model an HPA."""
    max_replicas: int | None = None
    """HPA ceiling (public models); 3 x replicas when unset."""
    tolerations: Sequence[Mapping[str, str]] = ()
    """Tolerations for GPU node taints."""
    pull_secret: pulumi.Input[str] | None = None
    """Image pull secret name."""
    component: str = "model"
    """app.kubernetes.io/component."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables (no secrets)."""
    extra_ports: Sequence[int] = ()
    """More container and Service ports (e.g. gRPC next to REST)."""
    volumes: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = ()
    """(volume, volumeMount) pairs, e.g. a ConfigMap mounted as a directory."""
    init_containers: Sequence[Mapping[str, Any]] = ()
    """Containers run to completion before the main one (restricted security context added)."""
    init_volumes: Sequence[Mapping[str, Any]] = ()
    """Volumes only the init containers mount."""
    host_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Host name -> addresses written to the pod's /etc/hosts (`hostAliases`), instead of cluster DNS."""
    command: Sequence[str] = ()
    """Container command (the image's entrypoint when empty)."""
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Environment variables from secrets: kept in a Secret of the model, referenced by key."""
    cache: CacheVolume | None = None
    """A persistent model cache (a claim of the model's own)."""
    download_except: Sequence[str] | None = None
    """When set, HTTPS out to any IPv4 address but these CIDRs (the weights' downloads); none when unset."""
    shm_size: str | None = None
    """Size of a memory-backed /dev/shm; the runtime's default when unset."""
    probe_port: int | None = None
    """Port of the probes; `port` when unset."""
    probe_timing: ProbeTiming = field(default_factory=ProbeTiming)
    """When the probes run, and the startup budget."""
    security: Security = field(default_factory=Security)
    """Escape hatch from the restricted container defaults."""
    gpu_node_terms: Sequence[Mapping[str, Any]] = ()
    """More node affinity expressions for a GPU pod (its memory budget, a whole GPU)."""
    autoscale_metrics: Sequence[Mapping[str, Any]] = ()
    """The HPA's metrics (public models); CPU utilisation when empty."""
