"""The pod of a model service: its container (image, command, environment, resources, probes),
volumes (scratch, model cache, shared memory) and placement. The restricted security context
is the default; `Security` is the one documented way out of it (see docs/security.md)."""

from __future__ import annotations

import math
from typing import Any

import pulumi

from components.kit.kube import CLOUD_NODES, GPU_MODEL_LABEL, SITE_LABEL, restricted_container, restricted_pod, selector

# The pod's arguments, importable from here as before they had a module of their own.
from components.workloads.model_args import CacheVolume as CacheVolume
from components.workloads.model_args import ModelServiceArgs
from components.workloads.model_args import ProbeTiming as ProbeTiming
from components.workloads.model_args import Security as Security

# checkov checks waived, each with its reason, only on the Deployment of a model that asked for
# what they flag (checkov reads `checkov.io/skip<n>: <check>=<reason>` annotations).
WRITABLE_ROOT_CHECK = "CKV_K8S_22"  # read-only root filesystem
SECRET_ENV_CHECK = "CKV_K8S_35"  # secrets as files rather than environment variables
HIGH_UID_CHECK = "CKV_K8S_40"  # UID >= 10000
HIGH_UID = 10000


def probes(args: ModelServiceArgs) -> dict[str, Any]:
    kind, target = args.probe
    port = args.probe_port or args.port
    probe: dict[str, Any] = {"httpGet": {"path": target, "port": port}} if kind == "http" else {"tcpSocket": {"port": port}}
    t = args.probe_timing
    return {
        "readinessProbe": probe | {"periodSeconds": t.period_seconds, "failureThreshold": t.failure_threshold},
        "livenessProbe": probe | {"initialDelaySeconds": t.initial_delay_seconds, "periodSeconds": 2 * t.period_seconds,
                                  "failureThreshold": t.failure_threshold},
        "startupProbe": probe | {"periodSeconds": t.period_seconds, "failureThreshold": math.ceil(t.startup_seconds / t.period_seconds)},
    }


def _env(args: ModelServiceArgs, secret: pulumi.Input[str] | None) -> list[dict[str, Any]]:
    plain = [{"name": k, "value": v} for k, v in sorted(args.env.items())]
    # Secret values stay in the model's Secret; the pod names only the Secret and the key.
    refs = [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": k}}} for k in sorted(args.secret_env)] if secret is not None else []
    return plain + refs


def _volumes(args: ModelServiceArgs, cache_claim: pulumi.Input[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, the main container's mounts)."""
    volumes: list[dict[str, Any]] = [{"name": f"scratch-{i}", "emptyDir": {}} for i in range(len(args.writable_paths))]
    mounts: list[dict[str, Any]] = [{"name": f"scratch-{i}", "mountPath": path} for i, path in enumerate(args.writable_paths)]
    volumes += [dict(volume) for volume, _ in args.volumes]
    mounts += [dict(mount) for _, mount in args.volumes]
    if args.cache is not None and cache_claim is not None:
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": cache_claim}})
        mounts.append({"name": "model-cache", "mountPath": args.cache.mount_path})
    if args.shm_size is not None:
        # Memory-backed: the kubelet mounts a tmpfs of this size, charged to the pod's memory.
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": args.shm_size}})
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    return volumes + [dict(v) for v in args.init_volumes], mounts


def _container(name: str, args: ModelServiceArgs, secret: pulumi.Input[str] | None, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    limits = {"cpu": args.cpu_limit, "memory": args.memory}
    if args.gpus:
        limits["nvidia.com/gpu"] = str(args.gpus)
    security = restricted_container(args.run_as)
    if args.security.writable_root_filesystem:
        security["readOnlyRootFilesystem"] = False
    container: dict[str, Any] = {
        "name": name,
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",  # multi-GB model images: pull once per node
        "ports": [{"name": "main", "containerPort": args.port, "protocol": "TCP"}]
        + [{"name": f"port-{p}", "containerPort": p, "protocol": "TCP"} for p in args.extra_ports],
        "resources": {"requests": {"cpu": args.cpu, "memory": args.memory}, "limits": limits},
        **probes(args),
        "securityContext": security,
        "volumeMounts": mounts,
    }
    if args.command:
        container["command"] = list(args.command)
    if args.args:
        container["args"] = list(args.args)
    if env := _env(args, secret):
        container["env"] = env
    return container


def pod_spec(name: str, args: ModelServiceArgs, secret: pulumi.Input[str] | None = None,
             cache_claim: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """The Deployment's pod spec; `secret` names the Secret holding the model's secret env,
    `cache_claim` the claim of its cache."""
    volumes, mounts = _volumes(args, cache_claim)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod(args.run_as),
        "containers": [_container(name, args, secret, mounts)],
        "volumes": volumes,
    }
    if args.host_aliases:
        pod["hostAliases"] = [{"ip": ip, "hostnames": [name]} for name, ips in sorted(args.host_aliases.items()) for ip in ips]
    if args.init_containers:
        pod["initContainers"] = [dict(c) | {"securityContext": restricted_container(args.run_as)} for c in args.init_containers]
    if args.placement == "gpu":
        gpu_node = [{"key": GPU_MODEL_LABEL, "operator": "Exists"}]
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": gpu_node + [dict(t) for t in args.gpu_node_terms]}]}}}
        pod["runtimeClassName"] = "nvidia"
        pod["tolerations"] = [dict(t) for t in args.tolerations]
    else:
        pod["nodeSelector"] = dict(CLOUD_NODES)
    pod["topologySpreadConstraints"] = spread(name, args)
    if args.pull_secret is not None:
        pod["imagePullSecrets"] = [{"name": args.pull_secret}]
    return pod


def autoscale_ceiling(args: ModelServiceArgs) -> int:
    """A public model's HPA ceiling: `max_replicas`, else 3 x replicas."""
    return args.max_replicas or max(args.replicas, 1) * 3


def most_pods(args: ModelServiceArgs) -> int:
    """The most replicas the model may run: its HPA's ceiling when public (it has one), else `replicas`."""
    return max(autoscale_ceiling(args), args.replicas) if args.public is not None else args.replicas


def spread(name: str, args: ModelServiceArgs) -> list[dict[str, Any]]:
    """Replicas over hosts, and for a model that may run more than one pod, over sites too, so
    losing a host or a whole site leaves the model up where it can run elsewhere.

    Both are ScheduleAnyway (a preference), never DoNotSchedule: while a site is offline its
    nodes still count as a domain (the scheduler ignores their taints by default), with none of
    the model's pods once they are evicted, so a hard site constraint would leave every
    replacement Pending exactly when it is needed; and GPU slots are few, so a hard constraint
    could also strand a pod on a full site. Only the nodes the pod may run on make domains, so
    a cloud-only model sees one site and is simply spread over hosts. A single-replica model
    keeps its template as it was (a changed template restarts the model)."""
    match = {"labelSelector": {"matchLabels": selector(name)}}
    constraints = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", **match}]
    if most_pods(args) > 1:
        constraints.append({"maxSkew": 1, "topologyKey": SITE_LABEL, "whenUnsatisfiable": "ScheduleAnyway", **match})
    return constraints


def deployment_annotations(args: ModelServiceArgs) -> dict[str, str] | None:
    waived = []
    if args.security.writable_root_filesystem:
        waived.append(f"{WRITABLE_ROOT_CHECK}=the model server writes its root filesystem (models[].security)")
    if args.secret_env:
        waived.append(f"{SECRET_ENV_CHECK}=the model server reads these secrets from its environment (models[].secretEnv)")
    if args.run_as < HIGH_UID:
        waived.append(f"{HIGH_UID_CHECK}=the image needs this UID (models[].security.runAsUser)")
    return {f"checkov.io/skip{i}": w for i, w in enumerate(waived, 1)} or None
