"""One catalog entry as Kubernetes objects: Deployment, Service, PodDisruptionBudget, and for
public APIs an HPA and an HTTPRoute on the public Gateway; plus the network policies it needs, all its own.

Everything a model needs is owned by the model: its egress to what it calls and the
matching ingress allowances on those targets are policies of its own, so adding or
removing a model touches no other resource.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apps.v1 import Deployment
from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscaler
from pulumi_kubernetes.core.v1 import PersistentVolumeClaim, Secret, Service
from pulumi_kubernetes.networking.v1 import NetworkPolicy
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget

from components.kit.kube import allow_ingress, manifest, metadata, selector

# The arguments, importable from here as before they had a module of their own.
from components.workloads.model_args import ModelServiceArgs as ModelServiceArgs
from components.workloads.model_args import Peer as Peer
from components.workloads.model_args import PublicRoute as PublicRoute
from components.workloads.pod import autoscale_ceiling, deployment_annotations, pod_spec

# How long a rollout may take once the nodes it needs are Ready (the workload layer waits for
# that first). pulumi-kubernetes gives a Deployment 10 minutes by default; a first install
# pulls multi-GB model images over office links and loads models (the startup probe allows
# 10 minutes on its own), so GPU workloads get more.
ROLLOUT_MINUTES = {"gpu": 45, "cloud": 20}
# Beyond the startup budget, time for the image pull and scheduling: a model allowed to load
# longer than its placement's rollout timeout gets a longer timeout, not a failed `pulumi up`.
PULL_MARGIN_MINUTES = 10


def rollout_timeouts(placement: str, startup_seconds: int) -> pulumi.CustomTimeouts:
    """The Deployment's create/update timeout: the placement's, or the startup budget plus the margin."""
    minutes = max(ROLLOUT_MINUTES[placement], -(-startup_seconds // 60) + PULL_MARGIN_MINUTES)
    return pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")


# Stop the old pod before starting the new one when the pod holds something a second one cannot
# share: a GPU slot (the surge pod would need one more on a full node) or a node-pinned
# ReadWriteOnce cache (the surge pod must land on that node). RollingUpdate with maxSurge 0 (not
# Recreate) so a model with several replicas still rolls one pod at a time while the others serve.
STOP_FIRST = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def route_rule(route: PublicRoute) -> dict[str, Any]:
    """The HTTPRoute's match: the public path, or only its API prefix, rewritten (Gateway API
    standard channel: `<path>/v1/models` reaches the server as `/v1/models`)."""
    if route.api_prefix is None:
        return {"matches": [{"path": {"type": "PathPrefix", "value": route.path}}]}
    rewrite = {"type": "ReplacePrefixMatch", "replacePrefixMatch": route.api_prefix}
    return {"matches": [{"path": {"type": "PathPrefix", "value": route.path.rstrip("/") + route.api_prefix}}],
            "filters": [{"type": "URLRewrite", "urlRewrite": {"path": rewrite}}]}

# What a public model autoscales on unless it names its own metrics (a CPU-bound API server).
CPU_TARGET = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}


def disruption_budget(name: str, args: ModelServiceArgs) -> dict[str, Any]:
    """The PodDisruptionBudget's spec: one replica kept through voluntary disruptions (drains)
    when there are several, else the one pod may go. A pod that is not Ready serves nothing, so
    it may always be evicted (AlwaysAllow): under the default policy, once pods on a site that is
    offline (or crash-looping) have spent the budget, every eviction of them is refused and a
    drain retries forever for pods that cannot serve anyway."""
    disruption = {"minAvailable": 1} if args.replicas > 1 else {"maxUnavailable": 1}
    return {"selector": {"matchLabels": selector(name)}, **disruption, "unhealthyPodEvictionPolicy": "AlwaysAllow"}


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
        secret, claim = self._storage(name, args, child)
        deployment = Deployment(f"{name}-deployment", metadata=metadata(name, ns, args.component, deployment_annotations(args)), spec=manifest({
            # Scaled by its HPA when public: no count of ours to fight it over (Kubernetes' HPA guidance).
            **({} if args.public is not None else {"replicas": args.replicas}),
            "revisionHistoryLimit": 3,
            **({"strategy": STOP_FIRST} if args.cache is not None or args.gpus else {}),
            "selector": {"matchLabels": selector(name)},
            "template": {"metadata": metadata(name, None, args.component), "spec": pod_spec(name, args, secret, claim)},
        }), opts=pulumi.ResourceOptions(parent=self, custom_timeouts=rollout_timeouts(args.placement, args.probe_timing.startup_seconds)))
        service = Service(f"{name}-service", metadata=metadata(name, ns, args.component), spec=manifest({
            "selector": selector(name),
            "ports": [{"name": "main", "port": args.port, "targetPort": args.port, "protocol": "TCP"}]
            + [{"name": f"port-{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in args.extra_ports],
        }), opts=child)
        PodDisruptionBudget(f"{name}-pdb", metadata=metadata(name, ns, args.component), spec=manifest(disruption_budget(name, args)), opts=child)
        self._network_policies(name, args, child)
        if args.public is not None:
            self._public(name, args, args.public, child)
        self.service_name = service.metadata.apply(lambda m: str(m["name"]))
        self.ready = deployment.status
        self.register_outputs({"serviceName": self.service_name})

    @staticmethod
    def _storage(name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions) -> tuple[pulumi.Output[str] | None, pulumi.Output[str] | None]:
        """The model's Secret for its secret env and the claim of its cache, when it has them
        (their names, so the Deployment waits for both)."""
        secret = claim = None
        if args.secret_env:
            data = {k: pulumi.Output.secret(v) for k, v in sorted(args.secret_env.items())}
            s = Secret(f"{name}-env", metadata=metadata(f"{name}-env", args.namespace, args.component), type="Opaque",
                       string_data=data, opts=opts)
            secret = s.metadata.apply(lambda m: str(m["name"]))
        if args.cache is not None:
            c = args.cache
            pvc = PersistentVolumeClaim(f"{name}-cache", metadata=metadata(f"{name}-cache", args.namespace, args.component), spec=manifest({
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": c.storage_class,
                "resources": {"requests": {"storage": c.size}},
            }), opts=opts)
            claim = pvc.metadata.apply(lambda m: str(m["name"]))
        return secret, claim

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
        if args.download_except is not None:
            NetworkPolicy(f"{name}-download", metadata=metadata(f"{name}-download", ns, "network-policy"), spec=manifest({
                "podSelector": {"matchLabels": selector(name)},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(args.download_except)}}],
                            "ports": [{"protocol": "TCP", "port": 443}]}],
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
                           "rules": [{**route_rule(route), "backendRefs": [{"name": name, "port": args.port}]}],
                       }), opts=opts)
        HorizontalPodAutoscaler(f"{name}-hpa", metadata=metadata(name, ns, args.component), spec=manifest({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(args.replicas, 1),
            "maxReplicas": autoscale_ceiling(args),
            "metrics": [dict(m) for m in args.autoscale_metrics] or [CPU_TARGET],
        }), opts=opts)
