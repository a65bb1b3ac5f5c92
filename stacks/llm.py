"""Wiring of the catalog's GPU budgets and `vllm` models: what the config says, turned into the
workload layer's arguments (budget affinity, autoscaling ceiling, the vLLM server)."""

from __future__ import annotations

from dataclasses import replace

from components.workloads.metrics_adapter import ScrapeTarget
from components.workloads.model_service import ModelServiceArgs
from components.workloads.pod import ProbeTiming, autoscale_ceiling
from components.workloads.vllm import METRICS_PATH, VllmServer, startup_seconds, vllm_service
from stacks.config import Model, StackConfig
from stacks.config.gpu_budget import eligible, memory_share, mib, node_terms, pods_that_fit

# vLLM uses shared memory between its API server and engine processes; the runtime's default
# /dev/shm (64 MiB) is small. Only where the pod has the memory for it, and never under MPS,
# where the device plugin mounts its daemon's /dev/shm instead.
VLLM_SHM = "1Gi"
VLLM_SHM_MIN_MEMORY_MIB = 4096


def budgeted(cfg: StackConfig, m: Model, args: ModelServiceArgs) -> ModelServiceArgs:
    """A GPU model's pods kept on GPUs that fit its budget, and a public one's autoscaling
    ceiling kept to the pods those GPUs can hold."""
    if m.placement != "gpu" or not node_terms(cfg, m):
        return args
    ceiling = min(autoscale_ceiling(args), max(pods_that_fit(cfg, m), max(args.replicas, 1)))
    return replace(args, gpu_node_terms=node_terms(cfg, m), max_replicas=ceiling if args.public is not None else args.max_replicas)


def vllm_args(cfg: StackConfig, m: Model, base: ModelServiceArgs, download_except: list[str]) -> ModelServiceArgs:
    """The catalog entry `m` (kind `vllm`) as a vLLM server over its `base` arguments."""
    v = m.vllm
    assert v is not None and m.gpu_memory is not None
    server = VllmServer(
        model=v.model, served_name=v.served_model_name or m.name, max_model_len=v.max_model_len,
        memory_share=memory_share(cfg, m), revision=v.revision, tensor_parallel_size=v.tensor_parallel_size,
        extra_args=tuple(v.extra_args), cache_dir=m.cache.mount_path if m.cache is not None else "/cache",
        cache_size=None if m.cache is not None else v.cache_size, queue_target=v.queue_target,
    )
    args = vllm_service(base, server)
    p = m.probes
    if "startup_seconds" not in p.model_fields_set:  # derived from the model's size unless set
        args = replace(args, probe_timing=ProbeTiming(p.initial_delay_seconds, p.period_seconds, p.failure_threshold,
                                                      startup_seconds(mib(m.gpu_memory))))
    if v.revision is not None:  # fetched from the Hub at start: HTTPS out, never into the cluster
        args = replace(args, download_except=download_except)
    mps = any(g.sharing == "mps" for g in eligible(cfg, m))
    if m.shm_size is None and not mps and mib(m.memory) >= VLLM_SHM_MIN_MEMORY_MIB:
        args = replace(args, shm_size=VLLM_SHM)
    return args


def scrape_targets(cfg: StackConfig) -> list[ScrapeTarget]:
    """Models whose own metrics Prometheus scrapes: every vLLM server, and any with `metricsPath`."""
    targets = [ScrapeTarget(m.name, m.port, METRICS_PATH, keep="vllm:.+", model_name=m.vllm.served_model_name or m.name)
               for m in cfg.models if m.kind == "vllm" and m.vllm is not None]
    return targets + [ScrapeTarget(m.name, m.port, m.metrics_path) for m in cfg.models if m.kind == "service" and m.metrics_path]


def queue_autoscaled(cfg: StackConfig) -> bool:
    """Whether an HPA scales on queue depth (a public vLLM model): the metrics adapter is needed."""
    return bool(cfg.ingress.domain) and any(m.kind == "vllm" and m.public_path for m in cfg.models)
