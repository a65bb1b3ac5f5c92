"""Cross-section rules about the model catalog: references resolve, public paths are unique,
requests fit what the hosts offer."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING

from components.kit.quantity import MEBIBYTE, parse_quantity
from stacks.config.hosts import Role
from stacks.config.types import BUILTIN_SERVICES

if TYPE_CHECKING:
    from stacks.config.models import Model
    from stacks.config.stack import StackConfig

# The storage class a cache gets when it names none (stacks/workloads.py, from the workload layer).
HOSTPATH = "microk8s-hostpath"


def gpus_and_models(cfg: StackConfig) -> list[str]:
    errors = []
    profiles = {p.name for p in cfg.time_slicing.profiles}
    for i, p in enumerate(cfg.time_slicing.profiles):
        if p.replicas > cfg.time_slicing.max_replicas:
            errors.append(f"timeSlicing.profiles[{i}].replicas: {p.replicas} is above timeSlicing.maxReplicas {cfg.time_slicing.max_replicas}")
    if cfg.time_slicing.default_profile and cfg.time_slicing.default_profile not in profiles:
        errors.append(f"timeSlicing.defaultProfile: unknown profile '{cfg.time_slicing.default_profile}'; define it under timeSlicing.profiles")
    gpu_hosts = [h for h in cfg.hosts if h.gpu and h.in_cluster]
    for h in gpu_hosts:
        profile = cfg.profile_of(h)
        if not profiles or profile in profiles:
            continue
        i, known = cfg.hosts.index(h), ", ".join(sorted(profiles))
        if h.gpu is not None and h.gpu.profile:
            errors.append(f"hosts[{i}].gpu.profile: unknown time-slicing profile '{profile}'; use one of: {known}")
        elif not cfg.time_slicing.default_profile:  # a wrong default is named above
            errors.append(f"hosts[{i}].gpu.model: no time-slicing profile '{profile}' (with `gpu.profile` and `timeSlicing.defaultProfile` "
                          f"unset, the GPU model names it); add one to timeSlicing.profiles or set `gpu.profile` to one of: {known}")
    model_names = {m.name for m in cfg.models} | set(BUILTIN_SERVICES)
    if any(m.public_path for m in cfg.models) and cfg.ingress.domain is None:
        i = next(i for i, m in enumerate(cfg.models) if m.public_path)
        errors.append(f"models[{i}].publicPath: public models need `ingress.domain`")
    if any(m.public_path for m in cfg.models) and not cfg.hosts_with(Role.INGRESS):
        errors.append("hosts: public models need a host with role `ingress`")
    sharing = bool(profiles)
    gpu_models = [(i, m.name) for i, m in enumerate(cfg.models) if m.placement == "gpu"]
    if gpu_models and not gpu_hosts:
        names = ", ".join(name for _, name in gpu_models)
        errors.append(f"models[{gpu_models[0][0]}].placement: {names} ask for GPU nodes but no cluster host has `gpu`; add a GPU host or use `placement: cloud`")
    for i, m in enumerate(cfg.models):
        if sharing and m.gpu_count > 1 and all(p.replicas > 1 for p in cfg.time_slicing.profiles):
            field = "vllm.tensorParallelSize" if m.kind == "vllm" else "gpus"
            errors.append(f"models[{i}].{field}: {m.gpu_count} GPUs per pod with time-slicing on (failRequestsGreaterThanOne); request 1, "
                          "or add a profile with `replicas: 1` for whole GPUs")
        if m.name in BUILTIN_SERVICES:
            errors.append(f"models[{i}].name: '{m.name}' is a built-in service; pick another name")
        for j, peer in enumerate(m.talks_to):
            if peer not in model_names:
                errors.append(f"models[{i}].talksTo[{j}]: unknown model '{peer}'")
    return errors


def _registry_of(image: str) -> str:
    """The registry host of an image reference (Docker's rule: a first component with '.' or ':',
    or `localhost`; else Docker Hub)."""
    first, _, rest = image.partition("/")
    return first.lower() if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"


def models(cfg: StackConfig) -> list[str]:
    errors = []
    paths: dict[str, int] = {}
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        if m.public_path is not None:
            path = m.public_path.rstrip("/") or "/"
            if path in paths:
                errors.append(f"{key}.publicPath: '{m.public_path}' already routes to '{cfg.models[paths[path]].name}'; give each public model its own path")
            paths.setdefault(path, i)
        elif m.max_replicas is not None:
            errors.append(f"{key}.maxReplicas: only public models autoscale, so it is ignored; set `publicPath` or remove it")
        if m.kind == "tf-model":
            if m.image is not None:
                errors.append(f"{key}.image: a tf-model is served by TF-Serving (`tfServing.image`), so it is ignored; remove it")
            if m.gpus:
                errors.append(f"{key}.gpus: a tf-model uses TF-Serving's GPU (`tfServing.gpus`), so it is ignored; remove it")
        elif m.tf is not None:
            errors.append(f"{key}.tf: only used with `kind: tf-model`; remove it or set the kind")
        errors += [f"{key}.talksTo: '{peer}' is listed {n} times; list each peer once" for peer, n in Counter(m.talks_to).items() if n > 1]
        if (cfg.registry is not None and m.placement == "cloud" and m.pull_secret is not False and m.image
                and _registry_of(m.image) == str(cfg.registry.server).lower() and "@sha256:" not in m.image):
            # The GPU pods on workstations reference the same pull secret, which their node may read:
            # credentials that can push could re-push this tag for the cloud nodes to pull.
            errors.append(f"{key}.image: a cloud model pulled with the `registry` credentials, which workstations can read, "
                          f"must name a digest (e.g. '{m.image.rsplit(':', 1)[0]}@sha256:<digest>'), or set `pullSecret: false` for a public image")
        if _millicores(m.cpu) > _millicores(m.cpu_limit):
            errors.append(f"{key}.cpu: request {m.cpu} is above `cpuLimit` {m.cpu_limit}; lower the request or raise the limit")
    return errors


def requests(cfg: StackConfig) -> list[str]:
    """Requests within what the hosts offer: a pod that fits no node stays Pending forever."""
    errors = []
    gpu_hosts = [h for h in cfg.hosts if h.gpu is not None and h.in_cluster]
    if gpu_hosts:
        largest = max(h.gpu.count for h in gpu_hosts if h.gpu)
        for i, m in enumerate(cfg.models):
            if not cfg.time_slicing.profiles and m.gpu_count > largest:
                errors.append(f"models[{i}].gpus: {m.gpu_count} GPUs per pod but the largest GPU host has {largest}; request at most {largest}")
        capacity = sum(h.gpu.count * cfg.replicas_of(h) for h in gpu_hosts if h.gpu)
        if errors:  # a pod that fits no host already says what to lower
            return errors
        demand = {m.name: m.replicas * m.gpu_count for m in cfg.models if m.kind != "tf-model" and m.gpu_count}
        if any(m.kind == "tf-model" for m in cfg.models):
            demand["tf-serving"] = cfg.tf_serving.gpus
        if sum(demand.values()) > capacity:
            detail = ", ".join(f"{n} {k}" for k, n in demand.items())
            errors.append(f"models: the GPU pods request {sum(demand.values())} GPUs ({detail}) but the GPU hosts offer {capacity} "
                          "(GPUs x time-slicing replicas); lower `replicas` or `gpus`, or add GPU hosts")
    cloud_hosts = [h for h in cfg.hosts if h.in_cluster and cfg.site(h.site).kind == "cloud"]
    for placement, hosts in (("gpu", gpu_hosts), ("cloud", cloud_hosts)):
        if not hosts or any(h.size is None for h in hosts):
            continue  # sizes unknown: nothing to compare with
        biggest = max(h.size.memory_mb for h in hosts if h.size)
        asks = [(f"models[{i}].memory", m.memory) for i, m in enumerate(cfg.models) if m.placement == placement and m.kind != "tf-model"]
        if placement == "gpu" and any(m.kind == "tf-model" for m in cfg.models):
            asks.append(("tfServing.memory", cfg.tf_serving.memory))
        errors += [f"{key}: {memory} is more than any {placement} node has ({biggest} MB in `size.memoryMb`); lower it or use bigger hosts"
                   for key, memory in asks if _mib(memory) > biggest]
    return errors


def pods(cfg: StackConfig) -> list[str]:
    """A model's pod settings agree with each other and with the rest of the stack."""
    errors = []
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        if m.pull_secret and cfg.registry is None:
            errors.append(f"{key}.pullSecret: there is no `registry` to pull with; configure `registry` or remove it")
        if m.shm_size is not None and _mib(m.shm_size) >= _mib(m.memory):
            errors.append(f"{key}.shmSize: {m.shm_size} of shared memory counts against the pod's memory ({m.memory}), "
                          "leaving nothing for the server; lower it or raise `memory`")
        if m.cache is not None and m.cache.mount_path in ("/tmp", "/dev/shm"):
            errors.append(f"{key}.cache.mountPath: {m.cache.mount_path} is already a volume of the pod; use another path (e.g. /cache)")
        if m.cache is not None:
            errors += _cache(cfg, key, m)
    return errors


def _cache(cfg: StackConfig, key: str, m: Model) -> list[str]:
    """A cache is one ReadWriteOnce claim; on `microk8s-hostpath` it is made and pinned on one node."""
    errors = []
    assert m.cache is not None
    if m.replicas > 1:
        errors.append(f"{key}.cache: a cache is one ReadWriteOnce claim pinned to one node, so {m.replicas} replicas would share "
                      "one node and one directory; use `replicas: 1` or remove `cache`")
    tainted = sorted({h.name for h in cfg.hosts if h.gpu is not None and h.in_cluster
                      and any(t.effect in ("NoSchedule", "NoExecute") for t in h.taints)})
    if m.placement == "gpu" and tainted and (m.cache.storage_class or HOSTPATH) == HOSTPATH:
        errors.append(f"{key}.cache.storageClass: the {HOSTPATH} provisioner's helper pod has no tolerations, so it cannot make the "
                      f"volume on the tainted GPU hosts ({', '.join(tainted)}); set a storage class whose provisioner runs there, or drop the taints")
    return errors


def node_fit(cfg: StackConfig) -> list[str]:
    """CPU requests within the biggest node of the model's placement (when sizes are known)."""
    errors = []
    for placement in ("gpu", "cloud"):
        hosts = [h for h in cfg.hosts if h.in_cluster and (h.gpu is not None if placement == "gpu" else cfg.site(h.site).kind == "cloud")]
        if not hosts or any(h.size is None for h in hosts):
            continue
        cores = max(h.size.cpus for h in hosts if h.size)
        errors += [f"models[{i}].cpu: {m.cpu} is more than any {placement} node has ({cores} cores in `size.cpus`); lower it or use bigger hosts"
                   for i, m in enumerate(cfg.models) if m.placement == placement and m.kind != "tf-model" and _millicores(m.cpu) > cores * 1000]
    return errors


def _millicores(cpu: str) -> Decimal:
    return parse_quantity(cpu) * 1000


def _mib(memory: str) -> Decimal:
    return parse_quantity(memory) / MEBIBYTE
