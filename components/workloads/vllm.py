"""vLLM's OpenAI-compatible server as a model service: its command line, environment, writable
places, probes and the queue-depth autoscaling metric, laid over a `ModelServiceArgs`.

Facts it relies on (docs/upstream.md, "vLLM"): the server answers `/health` (200 once the
engine is up, 503 when it has died) and `/metrics` on its one port, and serves the OpenAI
routes under `/v1/`; it binds the port before the engine loads, so only an HTTP probe of
`/health` tells a loaded server from a loading one. `--gpu-memory-utilization` is the share
of the GPU's memory this one server may take, whatever else runs on that GPU.

Everything it writes goes to volumes (the root filesystem stays read-only, non-root, as Pod
Security `restricted` wants): HOME and /tmp are emptyDirs, and the weights, Hugging Face and
compile caches live under the cache directory: an emptyDir with a size limit per replica (a
replica may then run on any GPU node and scale out; it downloads its own copy), or the
model's claim when the catalog gives it one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from components.workloads.model_service import ModelServiceArgs
from components.workloads.pod import ProbeTiming

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
OPENAI_PREFIX = "/v1"
HOME = "/home/vllm"
# Run the API server module itself rather than the image's entrypoint, which changed between
# releases (`vllm serve` now); the module takes the same flags (api_server.py's __main__).
ENTRYPOINT = ("python3", "-m", "vllm.entrypoints.openai.api_server")
# The name the metrics adapter gives `vllm:num_requests_waiting` (a colon is no API path name).
QUEUE_METRIC = "vllm_num_requests_waiting"
# Startup budget: a base for the engine (CUDA graphs, warm-up) plus time per GiB of budget,
# the most the weights can be (downloaded over an office link at ~10 MB/s, then loaded).
STARTUP_BASE_SECONDS = 600
STARTUP_SECONDS_PER_GIB = 100
STARTUP_MAX_SECONDS = 7200


@dataclass(frozen=True)
class VllmServer:
    model: str
    """Hugging Face id, or a path in the cache directory."""
    served_name: str
    """What clients send as `model`."""
    max_model_len: int
    memory_share: float
    """--gpu-memory-utilization: this server's share of one GPU's memory."""
    revision: str | None = None
    """The pinned commit of a Hugging Face model."""
    tensor_parallel_size: int = 1
    extra_args: Sequence[str] = ()
    """Allow-listed flags (the config checked them)."""
    cache_dir: str = "/cache"
    cache_size: str | None = "20Gi"
    """Size limit of the per-replica cache emptyDir; None when the model's claim is the cache."""
    queue_target: int = 4
    """Requests waiting per replica the autoscaler keeps to."""


def startup_seconds(gpu_memory_mib: int) -> int:
    """The startup probe's budget, derived from the model's size (its memory budget bounds it)."""
    return min(STARTUP_MAX_SECONDS, STARTUP_BASE_SECONDS + STARTUP_SECONDS_PER_GIB * -(-gpu_memory_mib // 1024))


def server_args(s: VllmServer, port: int) -> list[str]:
    args = [f"--model={s.model}"]
    if s.revision is not None:
        args.append(f"--revision={s.revision}")
    args += [
        f"--served-model-name={s.served_name}",
        f"--port={port}",
        f"--max-model-len={s.max_model_len}",
        f"--tensor-parallel-size={s.tensor_parallel_size}",
        f"--gpu-memory-utilization={s.memory_share:.2f}",
    ]
    return args + list(s.extra_args)


def server_env(s: VllmServer) -> dict[str, str]:
    env = {
        "HOME": HOME,
        "HF_HOME": f"{s.cache_dir}/huggingface",
        "VLLM_CACHE_ROOT": f"{s.cache_dir}/vllm",
        "XDG_CACHE_HOME": f"{s.cache_dir}/xdg",
        # The pod's UID has no passwd entry: getpass.getuser() (torch's inductor cache path)
        # reads these first; the compile caches go to the cache volume.
        "USER": "vllm",
        "LOGNAME": "vllm",
        "TORCHINDUCTOR_CACHE_DIR": f"{s.cache_dir}/torchinductor",
        "TRITON_CACHE_DIR": f"{s.cache_dir}/triton",
        # No usage reports to vLLM's collector (the namespace denies that egress anyway).
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if s.revision is None:  # a model in the cache: nothing to fetch from the Hub
        env["HF_HUB_OFFLINE"] = "1"
    return env


def queue_metric(target: int) -> dict[str, Any]:
    """The HPA metric: requests waiting per pod, from the custom metrics API."""
    return {"type": "Pods", "pods": {"metric": {"name": QUEUE_METRIC},
                                     "target": {"type": "AverageValue", "averageValue": str(target)}}}


def vllm_service(base: ModelServiceArgs, s: VllmServer) -> ModelServiceArgs:
    """`base` (namespace, resources, placement, budget affinity, route) made a vLLM server."""
    volumes = list(base.volumes)
    if s.cache_size is not None:
        # On the node's disk, at most this much; the kubelet evicts a pod that writes more.
        volumes.append(({"name": "vllm-cache", "emptyDir": {"sizeLimit": s.cache_size}},
                        {"name": "vllm-cache", "mountPath": s.cache_dir}))
    # Only the OpenAI routes (/v1, which VLLM_API_KEY guards) are public; the server's other
    # routes (/metrics, /tokenize, /scale_elastic_ep, ...) take no key and stay in the cluster.
    public = replace(base.public, api_prefix=OPENAI_PREFIX) if base.public is not None else None
    return replace(
        base,
        public=public,
        command=ENTRYPOINT,
        args=server_args(s, base.port),
        env={**base.env, **server_env(s)},
        writable_paths=("/tmp", HOME),
        volumes=volumes,
        gpus=s.tensor_parallel_size,
        probe=("http", HEALTH_PATH),
        autoscale_metrics=[queue_metric(s.queue_target)],
        component="llm-server",
    )


def default_timing(gpu_memory_mib: int) -> ProbeTiming:
    return ProbeTiming(startup_seconds=startup_seconds(gpu_memory_mib))
