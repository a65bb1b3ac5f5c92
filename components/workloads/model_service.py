"""One catalog entry as Kubernetes objects: Deployment, Service, PodDisruptionBudget, and for
public APIs an HPA and an HTTPRoute on the public Gateway; plus the network policies it needs, all its own.

Everything a model needs is owned by the model: its egress to what it calls and the
matching ingress allowances on those targets are policies of its own, so adding or
removing a model touches no other resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apps.v1 import Deployment
from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscaler
from pulumi_kubernetes.core.v1 import Service
from pulumi_kubernetes.networking.v1 import NetworkPolicy
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget

from components.kit.kube import allow_ingress, manifest, metadata, restricted_container, restricted_pod, selector

# How long a rollout may take once the nodes it needs are Ready (the workload layer waits for
# that first). pulumi-kubernetes gives a Deployment 10 minutes by default; a first install
# pulls multi-GB model images over office links and loads models (the startup probe allows
# 10 minutes on its own), so GPU workloads get more.
ROLLOUT_TIMEOUTS = {
    "gpu": pulumi.CustomTimeouts(create="45m", update="45m"),
    "cloud": pulumi.CustomTimeouts(create="20m", update="20m"),
}


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


class ModelService(pulumi.ComponentResource):
    """A model server or API, placed on cloud or GPU nodes."""

    service_name: pulumi.Output[str]
    """DNS name of its Service inside the namespace."""
    ready: pulumi.Output[Any]
    """Resolves once the Deployment has rolled out."""

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace
        deployment = Deployment(f"{name}-deployment", metadata=metadata(name, ns, args.component), spec=manifest({
            "replicas": args.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector(name)},
            "template": {"metadata": metadata(name, None, args.component), "spec": _pod(name, args)},
        }), opts=pulumi.ResourceOptions(parent=self, custom_timeouts=ROLLOUT_TIMEOUTS[args.placement]))
        service = Service(f"{name}-service", metadata=metadata(name, ns, args.component), spec=manifest({
            "selector": selector(name),
            "ports": [{"name": "main", "port": args.port, "targetPort": args.port, "protocol": "TCP"}]
            + [{"name": f"port-{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in args.extra_ports],
        }), opts=child)
        disruption = {"minAvailable": 1} if args.replicas > 1 else {"maxUnavailable": 1}
        PodDisruptionBudget(f"{name}-pdb", metadata=metadata(name, ns, args.component),
                            spec=manifest({"selector": {"matchLabels": selector(name)}, **disruption}), opts=child)
        self._network_policies(name, args, child)
        if args.public is not None:
            self._public(name, args, args.public, child)
        self.service_name = service.metadata.apply(lambda m: str(m["name"]))
        self.ready = deployment.status
        self.register_outputs({"serviceName": self.service_name})

    @staticmethod
    def _network_policies(name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions) -> None:
        ns = args.namespace
        if args.talks_to:
            NetworkPolicy(f"{name}-egress", metadata=metadata(f"{name}-egress", ns, "network-policy"), spec=manifest({
                "podSelector": {"matchLabels": selector(name)},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": selector(p.name)}}], "ports": [{"protocol": "TCP", "port": p.port}]}
                           for p in args.talks_to],
            }), opts=opts)
        for peer in args.talks_to:
            policy = f"{name}-to-{peer.name}"
            NetworkPolicy(policy, **allow_ingress(policy, ns, peer.name, peer.port, {"podSelector": {"matchLabels": selector(name)}}), opts=opts)

    @staticmethod
    def _public(name: str, args: ModelServiceArgs, route: PublicRoute, opts: pulumi.ResourceOptions) -> None:
        ns = args.namespace
        source = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": route.data_plane_namespace}}}
        # A new name, not an update of the old `-from-ingress`: while an existing stack migrates,
        # ingress-nginx keeps serving through that policy until Pulumi deletes both at the end.
        NetworkPolicy(f"{name}-from-gateway", **allow_ingress(f"{name}-from-gateway", ns, name, args.port, source), opts=opts)
        CustomResource(f"{name}-route", api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute",
                       metadata=metadata(name, ns, args.component), spec=manifest({
                           "parentRefs": [{"name": route.gateway, "sectionName": route.listener}],
                           "hostnames": [route.host],
                           "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                                      "backendRefs": [{"name": name, "port": args.port}]}],
                       }), opts=opts)
        HorizontalPodAutoscaler(f"{name}-hpa", metadata=metadata(name, ns, args.component), spec=manifest({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(args.replicas, 1),
            "maxReplicas": args.max_replicas or max(args.replicas, 1) * 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        }), opts=opts)


def _pod(name: str, args: ModelServiceArgs) -> dict[str, Any]:
    kind, target = args.probe
    probe: dict[str, Any] = {"httpGet": {"path": target, "port": args.port}} if kind == "http" else {"tcpSocket": {"port": args.port}}
    limits = {"cpu": args.cpu_limit, "memory": args.memory}
    if args.gpus:
        limits["nvidia.com/gpu"] = str(args.gpus)
    container: dict[str, Any] = {
        "name": name,
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",  # multi-GB model images: pull once per node
        "ports": [{"name": "main", "containerPort": args.port, "protocol": "TCP"}]
        + [{"name": f"port-{p}", "containerPort": p, "protocol": "TCP"} for p in args.extra_ports],
        "resources": {"requests": {"cpu": args.cpu, "memory": args.memory}, "limits": limits},
        "readinessProbe": probe | {"periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": probe | {"initialDelaySeconds": 30, "periodSeconds": 20, "failureThreshold": 3},
        "startupProbe": probe | {"periodSeconds": 10, "failureThreshold": 60},  # model loading may take minutes
        "securityContext": restricted_container(args.run_as),
        "volumeMounts": [{"name": f"scratch-{i}", "mountPath": path} for i, path in enumerate(args.writable_paths)]
        + [dict(mount) for _, mount in args.volumes],
    }
    if args.args:
        container["args"] = list(args.args)
    if args.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(args.env.items())]
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod(args.run_as),
        "containers": [container],
        "volumes": [{"name": f"scratch-{i}", "emptyDir": {}} for i in range(len(args.writable_paths))]
        + [dict(volume) for volume, _ in args.volumes] + [dict(v) for v in args.init_volumes],
    }
    if args.init_containers:
        pod["initContainers"] = [dict(c) | {"securityContext": restricted_container(args.run_as)} for c in args.init_containers]
    if args.placement == "gpu":
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "hybrid-ai/gpu-model", "operator": "Exists"}]}]}}}
        pod["runtimeClassName"] = "nvidia"
        pod["tolerations"] = [dict(t) for t in args.tolerations]
    else:
        pod["nodeSelector"] = {"hybrid-ai/location": "cloud"}
    # Spread replicas over nodes, so one node going down leaves the model up.
    pod["topologySpreadConstraints"] = [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector(name)},
    }]
    if args.pull_secret is not None:
        pod["imagePullSecrets"] = [{"name": args.pull_secret}]
    return pod
