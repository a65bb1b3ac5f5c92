"""GPU memory budgets: what each GPU host offers per pod, where a model with `gpuMemory` (or a
whole-GPU ask) may land, and the rules that refuse a catalog whose budgets cannot fit.

A profile with `memory` M and `replicas` R offers R shares of M / R per GPU. The device plugin
hands out at most R pods per GPU (time-slicing or MPS), so a pod whose budget is at most
M / R keeps every pod of that GPU within M. A server's own fraction of the GPU
(`--gpu-memory-utilization`, `--per_process_gpu_memory_fraction`) counts neither its CUDA
context nor vLLM's CUDA graph pool, so it gets its budget less GPU_CONTEXT_RESERVE_MIB. Only MPS
enforces the share (the plugin's daemon caps each CUDA client process at the card's total / R);
under time-slicing it holds only as long as each server keeps to its budget (vLLM does:
`--gpu-memory-utilization`). docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from components.kit.kube import NODE_LABEL_PREFIX
from components.kit.quantity import MEBIBYTE, parse_quantity

if TYPE_CHECKING:
    from stacks.config.hosts import Host
    from stacks.config.models import Model
    from stacks.config.stack import StackConfig

# Node labels the program sets on GPU nodes from their profile (stacks/build.py), which the
# pods' node affinity matches: the sharing mode, and the memory share of one pod in MiB. Under
# the node-restriction prefix, like every placement label: a kubelet cannot set them on itself.
SHARING_LABEL = NODE_LABEL_PREFIX + "gpu-sharing"
SHARE_LABEL = NODE_LABEL_PREFIX + "gpu-share-mib"
# The label the device plugin chart's MPS control daemon selects its nodes by (0.18.2,
# templates/daemonset-mps-control-daemon.yml); gpu-feature-discovery would set it, we do not run it.
MPS_CAPABLE_LABEL = "nvidia.com/mps.capable"
# GPU memory a server uses outside the fraction it is given: the CUDA context (a few hundred MiB)
# and vLLM's CUDA graphs (small models: some hundred MiB). Part of the budget, not of the fraction.
GPU_CONTEXT_RESERVE_MIB = 1024


def mib(quantity: str) -> int:
    """A Kubernetes quantity in whole MiB (rounded down: a budget never grows)."""
    return int(parse_quantity(quantity) / MEBIBYTE)


@dataclass(frozen=True)
class GpuHost:
    """What one GPU host offers GPU pods."""

    name: str
    profile: str
    count: int
    replicas: int
    sharing: str
    """`exclusive` (replicas 1), `time-slicing` or `mps`."""
    memory_mib: int | None
    """Memory of one GPU, when the profile declares it."""

    @property
    def share_mib(self) -> int | None:
        return self.memory_mib // self.replicas if self.memory_mib is not None else None

    def describe(self) -> str:
        if self.memory_mib is None:
            return f"{self.profile}: no `memory` declared"
        return f"{self.profile}: {self.memory_mib} MiB / {self.replicas} = {self.share_mib} MiB per pod"


def gpu_hosts(cfg: StackConfig) -> list[GpuHost]:
    out = []
    for h in cfg.hosts:
        if h.gpu is None or not h.in_cluster:
            continue
        name = cfg.profile_of(h) or h.gpu.model
        profile = next((p for p in cfg.time_slicing.profiles if p.name == name), None)
        replicas = profile.replicas if profile is not None else 1
        sharing = "exclusive" if replicas == 1 else (profile.sharing if profile is not None else "time-slicing")
        memory = mib(profile.memory) if profile is not None and profile.memory else None
        out.append(GpuHost(h.name, name, h.gpu.count, replicas, sharing, memory))
    return out


def node_labels(cfg: StackConfig, host: Host) -> dict[str, str]:
    """The budget labels of a GPU node (none for other nodes)."""
    offer = next((g for g in gpu_hosts(cfg) if g.name == host.name), None)
    if offer is None:
        return {}
    labels = {SHARING_LABEL: offer.sharing}
    if offer.share_mib is not None:
        labels[SHARE_LABEL] = str(offer.share_mib)
    if offer.sharing == "mps":
        labels[MPS_CAPABLE_LABEL] = "true"
    return labels


class GpuAsk(Protocol):
    """What a GPU pod asks for: a catalog model, or TF-Serving."""

    @property
    def gpu_memory(self) -> str | None: ...
    @property
    def exclusive_gpu(self) -> bool: ...
    @property
    def gpu_count(self) -> int: ...


def whole_gpus(m: GpuAsk) -> bool:
    """The model's pods need GPUs nobody shares: asked for, or several GPUs per pod."""
    return m.exclusive_gpu or m.gpu_count > 1


def reserves_whole_gpus(cfg: StackConfig) -> bool:
    """Whether exclusive GPU hosts are kept for the models that ask for whole GPUs: when any
    does, no other GPU pod may land there (the scheduler keeps nothing free by itself)."""
    return any(whole_gpus(m) for m in cfg.models)


def _kept_off_whole_gpus(cfg: StackConfig, m: GpuAsk) -> bool:
    return bool(m.gpu_count) and not whole_gpus(m) and reserves_whole_gpus(cfg)


def eligible(cfg: StackConfig, m: GpuAsk, *, reserved: bool = True) -> list[GpuHost]:
    """The GPU hosts the model's pods may land on (for a model without a budget: every one,
    but the whole GPUs kept for models asking for them unless `reserved` is False)."""
    hosts = gpu_hosts(cfg)
    if m.gpu_memory is not None:
        hosts = [g for g in hosts if g.share_mib is not None and g.share_mib >= mib(m.gpu_memory)]
    if whole_gpus(m):
        hosts = [g for g in hosts if g.sharing == "exclusive" and g.count >= m.gpu_count]
    elif reserved and _kept_off_whole_gpus(cfg, m):
        hosts = [g for g in hosts if g.sharing != "exclusive"]
    return hosts


def node_terms(cfg: StackConfig, m: GpuAsk) -> list[dict[str, Any]]:
    """Node affinity expressions that keep the model's pods on GPUs that fit its budget, and
    on whole GPUs exactly when it asks for them (when any model does)."""
    terms: list[dict[str, Any]] = []
    if m.gpu_memory is not None:
        terms.append({"key": SHARE_LABEL, "operator": "Gt", "values": [str(mib(m.gpu_memory) - 1)]})
    if whole_gpus(m):
        terms.append({"key": SHARING_LABEL, "operator": "In", "values": ["exclusive"]})
    elif _kept_off_whole_gpus(cfg, m):
        terms.append({"key": SHARING_LABEL, "operator": "NotIn", "values": ["exclusive"]})
    return terms


def memory_share(cfg: StackConfig, m: GpuAsk) -> float:
    """The fraction of a GPU a server may take (vLLM's `--gpu-memory-utilization`, TF-Serving's
    `--per_process_gpu_memory_fraction`): its budget less the CUDA context's reserve, over the
    largest GPU it may land on, rounded down, so it never takes more than the budget (on a
    smaller eligible GPU it takes less)."""
    assert m.gpu_memory is not None
    largest = max(g.memory_mib or 0 for g in eligible(cfg, m))
    return int(max(mib(m.gpu_memory) - GPU_CONTEXT_RESERVE_MIB, 0) * 100 // largest) / 100 if largest else 0.0


def pods_that_fit(cfg: StackConfig, m: GpuAsk) -> int:
    """The most pods of the model the GPUs it may land on can hold (each host: its shares, or
    its whole GPUs over the GPUs a pod takes)."""
    return sum(g.count * g.replicas // m.gpu_count for g in eligible(cfg, m))


def budget_errors(cfg: StackConfig) -> list[str]:
    """One line per model whose budget no GPU fits, then per budget level the catalog cannot hold."""
    errors = []
    offers = gpu_hosts(cfg)
    if not offers:
        return []
    described = "; ".join(sorted({g.describe() for g in offers}))
    budgeted: list[Level] = []
    for i, m in enumerate(cfg.models):
        if m.placement != "gpu" or m.kind == "tf-model":
            continue
        if eligible(cfg, m):
            if m.gpu_memory is not None and not whole_gpus(m):  # whole GPUs: _whole_capacity
                budgeted.append((f"models[{i}].replicas", m.name, m.replicas * m.gpu_count, m.gpu_memory))
                errors += _too_small(f"models[{i}].gpuMemory: '{m.name}' gets", cfg, m)
            errors += _mps_shm(cfg, i, m)
            continue
        if eligible(cfg, m, reserved=False):
            errors.append(f"models[{i}].exclusiveGpu: '{m.name}' shares a GPU, but every GPU host that fits it gives whole GPUs, kept for the "
                          f"models that ask for them ({_whole_names(cfg)}); set exclusiveGpu: true, or add a profile with `replicas` above 1")
        elif m.gpu_memory is not None and not any((g.share_mib or 0) >= mib(m.gpu_memory) for g in offers):
            errors.append(f"models[{i}].gpuMemory: '{m.name}' needs {m.gpu_memory} of GPU memory per pod but no GPU it may run on offers that "
                          f"({described}); lower gpuMemory, or give its profile `memory` or fewer `replicas`")
        elif m.gpu_count > 1:
            errors.append(f"models[{i}]: '{m.name}' needs {m.gpu_count} whole GPUs on one host, and no exclusive GPU host (profile `replicas: 1`) "
                          f"with enough GPUs{' and memory' if m.gpu_memory else ''} has them; lower the GPUs per pod or add such a host")
        else:
            errors.append(f"models[{i}].exclusiveGpu: '{m.name}' asks for a whole GPU but every GPU host{' that fits its budget' if m.gpu_memory else ''} "
                          f"shares its GPUs ({described}); add a profile with `replicas: 1` or remove exclusiveGpu")
    tf = cfg.tf_serving
    if tf.gpu_memory is not None and any(m.kind == "tf-model" for m in cfg.models):
        if eligible(cfg, tf):
            budgeted.append(("tfServing.gpuMemory", "tf-serving", tf.gpus, tf.gpu_memory))
            errors += _too_small("tfServing.gpuMemory: TF-Serving gets", cfg, tf)
        else:
            errors.append(f"tfServing.gpuMemory: TF-Serving needs {tf.gpu_memory} of GPU memory but no GPU it may run on offers that "
                          f"({described}); lower gpuMemory, or give its profile `memory` or fewer `replicas`")
    elif any(m.kind == "tf-model" for m in cfg.models) and not eligible(cfg, tf):
        errors.append(f"tfServing: TF-Serving shares a GPU, but every GPU host gives whole GPUs, kept for the models that ask for them "
                      f"({_whole_names(cfg)}); add a profile with `replicas` above 1")
    return errors or _unbudgeted(cfg) or _capacity(cfg, budgeted) or _whole_capacity(cfg)


def _whole_names(cfg: StackConfig) -> str:
    return ", ".join(m.name for m in cfg.models if whole_gpus(m))


def _unbudgeted(cfg: StackConfig) -> list[str]:
    """Wherever a pod that keeps to a budget may share a GPU, every GPU pod that may land there
    needs a budget too: without one it may take the memory the others count on."""
    asks: list[tuple[str, str, GpuAsk]] = [(f"models[{i}]", m.name, m) for i, m in enumerate(cfg.models)
                                           if m.kind != "tf-model" and m.gpu_count and not whole_gpus(m)]
    if any(m.kind == "tf-model" for m in cfg.models):
        asks.append(("tfServing", "tf-serving", cfg.tf_serving))
    shared: dict[str, set[str]] = {}
    for _, name, m in asks:
        for g in eligible(cfg, m) if m.gpu_memory is not None else []:
            if g.sharing != "exclusive":
                shared.setdefault(g.profile, set()).add(name)
    errors = []
    for key, name, m in asks:
        profiles = sorted({g.profile for g in eligible(cfg, m)} & set(shared)) if m.gpu_memory is None else []
        if profiles:
            p = next(g for g in gpu_hosts(cfg) if g.profile == profiles[0])
            errors.append(f"{key}.gpuMemory: '{name}' may share a GPU of profile {p.profile} with pods that keep to budgets "
                          f"({', '.join(sorted(shared[p.profile]))}), and without one of its own it could take their memory; "
                          f"set gpuMemory (at most the share, {p.share_mib} MiB)")
    return errors


def _whole_capacity(cfg: StackConfig) -> list[str]:
    """The pods asking for whole GPUs fit whatever the scheduler places first: a pod of k GPUs
    finds no host with k free only when the others hold more than k - 1 on every such host."""
    def most(m: Model) -> int:  # a public model's autoscaler may add pods up to its ceiling
        ceiling = min(m.max_replicas or 3 * max(m.replicas, 1), pods_that_fit(cfg, m))
        return max(m.replicas, ceiling) if m.public_path and cfg.ingress.domain else m.replicas

    whole = [(i, m, most(m)) for i, m in enumerate(cfg.models) if whole_gpus(m) and most(m)]
    demand = sum(pods * m.gpu_count for _, m, pods in whole)
    for i, m, _ in whole:
        hosts = eligible(cfg, m)
        limit = sum(g.count - m.gpu_count + 1 for g in hosts) + m.gpu_count - 1
        if demand > limit:
            names = ", ".join(f"{w.name} {pods} x {w.gpu_count}" for _, w, pods in whole)
            return [f"models[{i}].replicas: the models asking for whole GPUs need {demand} GPUs ({names}) but the exclusive GPU hosts "
                    f"'{m.name}' may use ({', '.join(f'{g.name}: {g.count}' for g in hosts)}) are sure to hold them, whatever the scheduler "
                    f"places first, only up to {limit}; lower replicas (or maxReplicas), or add GPUs to profiles with `replicas: 1`"]
    return []


def _too_small(what: str, cfg: StackConfig, m: GpuAsk) -> list[str]:
    if memory_share(cfg, m) >= 0.01:
        return []
    return [f"{what} {m.gpu_memory} of GPU memory per pod, which leaves the server nothing beside the CUDA context "
            f"({GPU_CONTEXT_RESERVE_MIB} MiB reserved, docs/models.md); raise gpuMemory"]


# (key to name, pod's name, GPU shares its pods take, budget per pod)
Level = tuple[str, str, int, str]


def _capacity(cfg: StackConfig, budgeted: list[Level]) -> list[str]:
    """Every budget level t: the pods asking t or more fit the shares of at least t (the sets
    of GPUs each level may use are nested, so this is enough for a placement to exist)."""
    kept = reserves_whole_gpus(cfg)  # then shared pods never use exclusive hosts
    for level in sorted({mib(memory) for *_, memory in budgeted}, reverse=True):
        asking = [b for b in budgeted if mib(b[3]) >= level]
        need = sum(shares for _, _, shares, _ in asking)
        offer = sum(g.count * g.replicas for g in gpu_hosts(cfg) if (g.share_mib or 0) >= level and not (kept and g.sharing == "exclusive"))
        if need > offer:
            names = ", ".join(f"{name} {shares} x {memory}" for _, name, shares, memory in asking)
            return [f"{asking[0][0]}: the pods with gpuMemory of {level} MiB or more need {need} GPU shares ({names}) "
                    f"but the GPUs whose share holds that offer {offer}; lower replicas or gpuMemory, or add GPUs"]
    return []


def _mps_shm(cfg: StackConfig, i: int, m: Model) -> list[str]:
    # Under MPS the device plugin mounts its daemon's shared memory at the container's
    # /dev/shm (internal/plugin/mps.go at 0.18.2): a second /dev/shm volume would clash.
    if m.shm_size is not None and any(g.sharing == "mps" for g in eligible(cfg, m)):
        return [f"models[{i}].shmSize: on MPS GPUs the device plugin mounts its own /dev/shm; remove shmSize or keep the model off MPS (gpuMemory, exclusiveGpu)"]
    return []
