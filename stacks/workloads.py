"""The workload layer: GPU sharing, the model catalog, TF-Serving, redis, ingress and TLS,
and the post-deploy verification, on the cluster's Kubernetes provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.cluster.api import ClusterApi
from components.cluster.microk8s import MicroK8sCluster
from components.cluster.verify import ClusterVerification, ClusterVerificationArgs, staging_roots
from components.hosts.host import HostNode
from components.kit.kube import CLOUD_METADATA, CLOUD_NODES
from components.kit.outputs import after
from components.workloads.addons import AddonPlacement, AddonPlacementArgs
from components.workloads.cluster_dns import ClusterDns, ClusterDnsArgs
from components.workloads.gpu_sharing import GpuSharing, GpuSharingArgs
from components.workloads.ingress import PublicIngress, PublicIngressArgs
from components.workloads.model_args import CacheVolume, ModelServiceArgs, Peer, ProbeTiming, PublicRoute, Security
from components.workloads.model_service import ModelService
from components.workloads.monitoring import Monitoring
from components.workloads.namespace import WorkloadNamespace, WorkloadNamespaceArgs
from components.workloads.registry import PullSecret, PullSecretArgs
from components.workloads.tf_serving import FETCH_IMAGE, GRPC_PORT, HOSTPATH_STORAGE_CLASS, TfModel, TfServing, TfServingArgs
from stacks.charts import chart, gateway_api_crds
from stacks.config import Host, Model, Role, StackConfig
from stacks.config.gpu_budget import memory_share, node_terms
from stacks.config.vllm import VLLM_IMAGE
from stacks.images import REDIS_IMAGE
from stacks.llm import budgeted, vllm_args
from stacks.load import Stack
from stacks.monitoring import build_monitoring

REDIS_PORT = 6379


@dataclass
class Workloads:
    models: dict[str, ModelService] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)
    monitoring: Monitoring | None = None
    wait_for: list[pulumi.Output[Any]] = field(default_factory=list)
    """What the post-deploy verification waits for."""
    verification: ClusterVerification | None = None
    """Set last (stacks/build.py), once everything it checks exists."""


def gpu_tolerations(cfg: StackConfig) -> list[dict[str, str]]:
    """Tolerations for every taint a GPU node carries."""
    taints = {(t.key, t.value, t.effect) for h in cfg.hosts if h.gpu is not None for t in h.taints}
    return [{"key": k, "operator": "Equal", "value": v, "effect": e} for k, v, e in sorted(taints)]


def _peer(cfg: StackConfig, name: str) -> Peer:
    if name == "tf-serving":
        return Peer(name, GRPC_PORT)
    if name == "redis":
        return Peer(name, REDIS_PORT)
    return Peer(name, next(m.port for m in cfg.models if m.name == name))


def _model_args(stack: Stack, m: Model, namespace: pulumi.Input[str], ingress: PublicIngress, pull: pulumi.Input[str] | None) -> ModelServiceArgs:
    cfg = stack.config
    args = _service_args(stack, m, namespace, ingress, pull)
    if m.kind == "vllm":
        args = vllm_args(cfg, m, args, _download_except(cfg))
    return budgeted(cfg, m, args)


def _service_args(stack: Stack, m: Model, namespace: pulumi.Input[str], ingress: PublicIngress, pull: pulumi.Input[str] | None) -> ModelServiceArgs:
    cfg = stack.config
    public = None
    if m.public_path and cfg.ingress.domain:
        public = PublicRoute(cfg.ingress.domain, m.public_path, ingress.gateway, ingress.listener, ingress.data_plane_namespace)
    p = m.probes
    cache = None
    if m.cache is not None:
        cache = CacheVolume(m.cache.mount_path, m.cache.size, m.cache.storage_class or HOSTPATH_STORAGE_CLASS)
    security = m.security
    return ModelServiceArgs(
        namespace=namespace, image=stack.image(m.image or VLLM_IMAGE), port=m.port, replicas=m.replicas, cpu=m.cpu, cpu_limit=m.cpu_limit,
        memory=m.memory, gpus=m.gpus, placement=m.placement, probe=("http", p.path or m.health_path) if m.health == "http" else ("tcp", ""),
        talks_to=[_peer(cfg, t) for t in m.talks_to], public=public, max_replicas=m.max_replicas,
        tolerations=gpu_tolerations(cfg) if m.placement == "gpu" else (), pull_secret=pull if m.pull_secret is not False else None,
        env=dict(m.env), secret_env={var: stack.secret(key) for var, key in m.secret_env.items()}, command=m.command, args=m.args,
        cache=cache, download_except=_download_except(cfg) if cache is not None else None, shm_size=m.shm_size, probe_port=p.port,
        probe_timing=ProbeTiming(p.initial_delay_seconds, p.period_seconds, p.failure_threshold, p.startup_seconds),
        run_as=(security.run_as_user or 10001) if security is not None else 10001,
        security=Security(security.writable_root_filesystem) if security is not None else Security(),
    )


def _download_except(cfg: StackConfig) -> list[str]:
    """What model downloads (a cache's, TF-Serving's) may not reach: the cluster's own networks (peers are
    allowed by name only) and the cloud metadata service."""
    return [str(cfg.cluster.pod_cidr), str(cfg.cluster.service_cidr), CLOUD_METADATA[0]]


def nodes_for(cfg: StackConfig, placement: str) -> list[Host]:
    """The cluster nodes a placement needs ("gpu", "cloud" or "ingress")."""
    def needed(h: Host) -> bool:
        if placement == "gpu":
            return h.gpu is not None
        if placement == "ingress":
            return Role.INGRESS.value in h.roles
        return cfg.site(h.site).kind == "cloud"
    return [h for h in cfg.hosts if h.in_cluster and needed(h)]


def nodes_ready(cfg: StackConfig, cluster: ClusterApi, placement: str) -> list[pulumi.Output[str]]:
    """Readiness of the nodes a placement needs, from the cluster: Ready and labelled (pods are
    placed by the program's labels, which a relabelled existing node gets in the same `up`)."""
    return [cluster.labelled[h.name] for h in nodes_for(cfg, placement)]


def build_workloads(stack: Stack, cluster: ClusterApi) -> Workloads:
    """The Kubernetes objects and charts of the stack, on the cluster's API."""
    cfg = stack.config
    k8s = pulumi.ResourceOptions(provider=cluster.provider)
    out = Workloads()
    namespace = WorkloadNamespace("workloads", WorkloadNamespaceArgs(cfg.cluster.namespace), opts=k8s).name
    # Each workload's namespace input resolves once the nodes it runs on are Ready: GPU pods do
    # not start their rollout clock while GPU nodes still reboot and join.
    on_nodes = {p: after(namespace, *nodes_ready(cfg, cluster, p)) for p in ("gpu", "cloud")}
    pull = None
    if cfg.registry is not None:
        pull = PullSecret("registry", PullSecretArgs(namespace, cfg.registry.server, cfg.registry.username,
                                                     stack.secret(cfg.registry.password_config)), opts=k8s).name

    wait_for = out.wait_for
    gpu_opts, runtime_class = _gpu_sharing(stack, k8s)
    if runtime_class is not None:
        wait_for.append(runtime_class)

    ingress = PublicIngress("ingress", PublicIngressArgs(
        controller=chart("traefik", cfg.sources, stack.pins, stack.files), gateway_api_crds=gateway_api_crds(cfg.sources, stack.files), workload_namespace=namespace, nodes_ready=nodes_ready(cfg, cluster, "ingress"), tls=cfg.ingress.tls, domain=cfg.ingress.domain,
        acme_email=cfg.ingress.acme_email, cert_manager=chart("cert-manager", cfg.sources, stack.pins, stack.files),
        byo_pem=stack.secret(cfg.ingress.tls_cert_config) if cfg.ingress.tls_cert_config else None,
    ), opts=k8s)

    _cluster_dns(cfg, cluster, k8s)

    if any("redis" in m.talks_to for m in cfg.models):  # only when a model says it uses it
        redis = ModelService("redis", ModelServiceArgs(
            namespace=on_nodes["cloud"], image=stack.image(REDIS_IMAGE), port=REDIS_PORT, cpu="100m", cpu_limit="1", memory="256Mi",
            probe=("tcp", ""), run_as=10999, writable_paths=("/data",), component="cache",
        ), opts=k8s)
        out.endpoints["redis"] = redis.service_name
        wait_for.append(redis.ready)

    tf_models = _tf_serving(stack, on_nodes["gpu"], pull, gpu_opts, out)
    gpu_ready = [on_nodes["gpu"], runtime_class] if runtime_class is not None else []
    out.monitoring = build_monitoring(cfg, namespace, "tf-serving" if tf_models else None, gpu_tolerations(cfg), k8s,
                                      ready={"cloud": [on_nodes["cloud"]], "gpu": gpu_ready}, secret=stack.secret, pins=stack.pins, files=stack.files)

    for m in (m for m in cfg.models if m.kind != "tf-model"):
        service = ModelService(m.name, _model_args(stack, m, on_nodes[m.placement], ingress, pull),
                               opts=gpu_opts if m.placement == "gpu" else k8s)
        out.models[m.name] = service
        out.endpoints[m.name] = service.service_name
        wait_for.append(service.ready)
    return out


def _cluster_dns(cfg: StackConfig, cluster: ClusterApi, k8s: pulumi.ResourceOptions) -> None:
    """CoreDNS at the cloud sites (docs/operations.md, "When an on-prem site goes offline") and the hostpath
    provisioner there (docs/security.md); left as the addons made them when no cluster node at a
    cloud site can hold them."""
    cloud = nodes_for(cfg, "cloud")
    # The addon's CoreDNS tolerates only CriticalAddonsOnly: a node with another hard taint cannot hold it.
    holders = [h for h in cloud if all(t.key == "CriticalAddonsOnly" or t.effect == "PreferNoSchedule" for t in h.taints)]
    if holders:
        seed = cfg.hosts_with(Role.CONTROL_PLANE)[0]  # it enables the dns addon
        ready = [cluster.ready[seed.name], *(cluster.labelled[h.name] for h in cloud)]
        ClusterDns("cluster-dns", ClusterDnsArgs(CLOUD_NODES, len(holders), ready), opts=k8s)
    # The hostpath provisioner tolerates no taint; it creates pods anywhere: on the cloud nodes only.
    if any(all(t.effect == "PreferNoSchedule" for t in h.taints) for h in cloud):
        seed = cfg.hosts_with(Role.CONTROL_PLANE)[0]  # it enables hostpath-storage
        AddonPlacement("addons", AddonPlacementArgs(CLOUD_NODES, [cluster.ready[seed.name], *(cluster.labelled[h.name] for h in cloud)]), opts=k8s)


def _gpu_sharing(stack: Stack, k8s: pulumi.ResourceOptions) -> tuple[pulumi.ResourceOptions, pulumi.Output[str] | None]:
    """The device plugin with one time-slicing profile per GPU kind; the options GPU pods take
    (they need the plugin) and the RuntimeClass, or (k8s, None) without GPU nodes."""
    cfg = stack.config
    gpu_hosts = [h for h in cfg.hosts if h.gpu is not None and h.in_cluster]
    if not gpu_hosts:
        return k8s, None
    profiles = {p.name: p.replicas for p in cfg.time_slicing.profiles} or {h.gpu.model: 1 for h in gpu_hosts if h.gpu}
    default = cfg.time_slicing.default_profile or sorted(profiles)[0]
    mps = [p.name for p in cfg.time_slicing.profiles if p.sharing == "mps"]
    sharing = GpuSharing("gpu-sharing", GpuSharingArgs(chart("nvidia-device-plugin", cfg.sources, stack.pins, stack.files), profiles, default, gpu_tolerations(cfg), mps),
                         opts=k8s)
    return pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=[sharing])), sharing.runtime_class


def _tf_serving(stack: Stack, namespace: pulumi.Input[str], pull: pulumi.Input[str] | None,
                gpu_opts: pulumi.ResourceOptions, out: Workloads) -> list[TfModel]:
    """TF-Serving with the catalog's `tf-model` entries (none without them); its models."""
    cfg = stack.config
    files = cfg.files_mirrors()  # the GPU nodes' sites' (one for all: stacks/config/consistency/mirrored.py)
    tf_models = [TfModel(m.name, m.tf.base_path, m.tf.version, files.model_source(m.tf.source), m.tf.sha256)
                 for m in cfg.models if m.kind == "tf-model" and m.tf is not None]
    if tf_models:
        t = cfg.tf_serving
        tf = TfServing("tf-serving", TfServingArgs(
            namespace=namespace, image=stack.image(t.image), fetch_image=stack.image(FETCH_IMAGE), models=tf_models, gpus=t.gpus, memory=t.memory, poll_seconds=t.poll_seconds,
            storage_size=t.storage_size, storage_class=t.storage_class or HOSTPATH_STORAGE_CLASS, tolerations=gpu_tolerations(cfg),
            pull_secret=pull, blocked_cidrs=_download_except(cfg),
            memory_fraction=memory_share(cfg, t) if t.gpu_memory else None, gpu_node_terms=node_terms(cfg, t),
            source_ca=stack.secret(files.files_ca_config) if files.files_ca_config else None,
            source_aliases={files.files_host() or "": [str(a) for a in files.files_addresses]} if files.files_addresses else {},
        ), opts=gpu_opts)
        out.endpoints["tf-serving"] = tf.service_name
    return tf_models


def build_verification(cfg: StackConfig, cluster: MicroK8sCluster, hosts: dict[str, HostNode], wait_for: list[pulumi.Output[Any]]) -> ClusterVerification:
    """The post-deploy check on the control plane (over SSH), once everything it checks exists."""
    # The first public model with an HTTP health path on the Gateway (a vLLM server has only /v1 there).
    public = next((m for m in cfg.models if m.public_path and m.kind != "vllm" and m.health == "http"), None)
    ingress_host = next((h for h in cfg.hosts_with(Role.INGRESS)), None)
    probe_url = None
    if public is not None and public.public_path and cfg.ingress.domain:
        scheme = "http" if cfg.ingress.tls == "none" else "https"
        probe_url = f"{scheme}://{cfg.ingress.domain}{public.public_path.rstrip('/')}{public.health_path}"
    return ClusterVerification("cluster-verify", ClusterVerificationArgs(
        target=cluster.control_plane,
        node_ready=cluster.ready,
        # Verify the upgraded cluster, not one mid-roll.
        wait_for=[*wait_for, *([cluster.upgraded] if cluster.upgraded is not None else [])],
        probe_url=probe_url,
        ingress_address=hosts[ingress_host.name].public_address if ingress_host and probe_url else None,
        # A staging certificate chains to a root no trust store has: trust exactly those roots.
        probe_ca=staging_roots() if probe_url and cfg.ingress.tls == "letsencrypt-staging" else None,
        voters=len(cfg.hosts_with(Role.CONTROL_PLANE)),
    ))
