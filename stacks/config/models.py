"""`hybrid-ai:models`, `hybrid-ai:tfServing`, `hybrid-ai:registry`: the model catalog, the
TF-Serving server of its `tf-model` entries, and private registry credentials. A `vllm`
entry's server settings are in `stacks/config/vllm.py`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from stacks.config.types import (
    ConfigKeyName,
    Cpu,
    DnsLabel,
    HostAddress,
    Memory,
    ModelBasePath,
    PinnedImage,
    Port,
    Schema,
    StorageClassName,
    strict,
)
from stacks.config.vllm import Vllm

SourceUrl = Annotated[str, strict(r"https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+=&?-]*",
                                  "not a download URL; use https://<host>/<path> with no spaces or quotes, e.g. 'https://models.example.com/m-2.tar.gz'")]
Sha256 = Annotated[str, strict(r"[0-9a-f]{64}", "not a SHA-256; use the 64 lowercase hex digits `sha256sum` prints")]
HttpPath = Annotated[str, strict(r"/[A-Za-z0-9/_.-]*", "not an HTTP path; start with '/' and use letters, digits, '/', '_', '.', '-' (e.g. '/healthz')")]
MountPath = Annotated[str, strict(r"/[A-Za-z0-9/_.-]*", "not a mount path; start with '/' and use letters, digits, '/', '_', '.', '-' (e.g. '/cache')")]
PublicPath = Annotated[str, strict(r"/[a-z0-9/_-]*", "not a public path; start with '/' and use lowercase letters, digits, '/', '_', '-' (e.g. '/receipts')")]


class TfModel(Schema):
    # `source` and `sha256` come first so that `basePath` is checked knowing them.
    source: SourceUrl | None = Field(default=None, description="HTTPS URL of a .tar.gz of this version's SavedModel (saved_model.pb, variables/); fetched into `<basePath>/<version>` of the models volume before TF-Serving starts. Needs `sha256` and a basePath under `/models/`.")
    sha256: Sha256 | None = Field(default=None, description="SHA-256 of the `source` archive; a download that does not match is refused.")
    base_path: ModelBasePath = Field(description="Where TF-Serving finds the model versions: `/models/<name>` on the models volume, filled from `source`. Not `s3://` (TF-Serving 2.18 has no S3 file system) nor `gs://` (it would need Google credentials the program does not pass).")
    version: int = Field(ge=1, description="Pinned model version, so no model is unloaded by accident.")

    @field_validator("base_path")
    @classmethod
    def _provided(cls, value: str, info: ValidationInfo) -> str:
        if "source" not in info.data:  # the source itself was refused; that error says enough
            return value
        if info.data["source"] is not None and not re.fullmatch(r"/models/[A-Za-z0-9._-]+", value):
            raise ValueError("with `source`, `basePath` must be `/models/<name>` (the models volume)")
        # TF-Serving opens no port until every configured model has loaded and waits for that
        # without a timeout: one model with no files keeps the whole server down.
        if info.data["source"] is None:
            raise ValueError("nothing but `source` puts a local model's files in place, and TF-Serving serves nothing until every "
                             "model has loaded; give the model `source` and `sha256` (an HTTPS .tar.gz of the version)")
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> TfModel:
        if self.source is not None and self.sha256 is None:
            raise ValueError("`source` needs `sha256` (of the archive), so a changed download is refused")
        return self


EnvName = Annotated[str, strict(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "not an environment variable name; use letters, digits and '_', not starting with a digit (e.g. 'HF_HOME')")]


def _no_expansion(value: str) -> str:
    # The kubelet expands `$(VAR)` in command, args and env values from the container's
    # environment: `$(HF_TOKEN)` would put a secretEnv value on the process command line.
    if "$(" in value.replace("$$", ""):
        raise ValueError("`$(` is expanded by Kubernetes from the container's environment (secrets included); write `$$(` for a literal `$(`, or read the variable in the program")
    return value


Unexpanded = Annotated[str, AfterValidator(_no_expansion)]


class Probes(Schema):
    path: HttpPath | None = Field(default=None, description="HTTP path of the probes; `healthPath` when unset.")
    port: Port | None = Field(default=None, description="Port of the probes; the model's `port` when unset.")
    initial_delay_seconds: int = Field(default=30, ge=0, le=3600, description="Liveness probe's initial delay, counted by the kubelet from container start (not from when the startup probe passed): with a startup probe it rarely matters; raise `startupSeconds` for a longer load.")
    period_seconds: int = Field(default=10, ge=1, le=300, description="Seconds between probes.")
    failure_threshold: int = Field(default=3, ge=1, le=30, description="Failed probes before the container is restarted (liveness) or taken out of the Service (readiness).")
    startup_seconds: int = Field(default=600, ge=10, le=7200, description="How long the model may take to load: the startup probe's budget before the container is restarted. The rollout timeout grows to this plus 10 minutes when that is above the placement's (45 min GPU, 20 min cloud).")


class ModelCache(Schema):
    mount_path: MountPath = Field(default="/cache", description="Where the container sees the cache.")
    size: Memory = Field(default="20Gi", description="Size of the cache volume.")
    storage_class: StorageClassName | None = Field(default=None, description="Storage class of the claim; `microk8s-hostpath` (node-local: the model's pods stay on the node the volume was made on) when unset.")


class ModelSecurity(Schema):
    run_as_user: int | None = Field(default=None, ge=1, le=2147483647, description="UID (and GID) the image needs; 10001 when unset. Never 0: the namespace's Pod Security `restricted` refuses root.")
    writable_root_filesystem: bool = Field(default=False, description="Let the server write its root filesystem (some servers write beside their code). Pod Security `restricted` admits it; checkov's CKV_K8S_22 is waived on this Deployment only.")



# Environment a `vllm` model may not set: these variables reach past its settings (vLLM's dev
# routes and runtime LoRA loading, another Hub endpoint, Python's path, the dynamic loader).
VLLM_SERVER_ENV = ("VLLM_", "HF_", "HUGGING_FACE_", "PYTHON", "LD_", "CUDA_", "NCCL_", "TORCH", "TRITON_")
VLLM_TOKENS = frozenset({"HF_TOKEN", "VLLM_API_KEY"})

class Model(Schema):
    name: DnsLabel = Field(description="Model or service name; becomes the Deployment, Service and TF model name.")
    kind: Literal["service", "tf-model", "vllm"] = Field(default="service", description="`service` runs its own image; `tf-model` is served by TF-Serving; `vllm` is an LLM behind vLLM's OpenAI-compatible server (docs/models.md).")
    image: PinnedImage | None = Field(default=None, description="Container image pinned by tag or digest (kind `service`; for `vllm`, the pinned vLLM image when unset).")
    placement: Literal["cloud", "gpu"] = Field(default="cloud", description="Run on cloud nodes or on GPU workstations.")
    port: Port = Field(default=8080, description="Container port.")
    replicas: int = Field(default=1, ge=0, le=100, description="Desired replicas (the minimum when autoscaled).")
    gpus: int = Field(default=0, ge=0, description="`nvidia.com/gpu` per pod (placement `gpu`); at most 1 with time-slicing. A `vllm` model takes `vllm.tensorParallelSize`.")
    gpu_memory: Memory | None = Field(default=None, description="GPU memory one pod may use (its budget, e.g. `6Gi`): it lands only on GPUs whose share per pod (profile `memory` / `replicas`) holds it; required for `vllm`, and for every GPU model that may share a GPU with one that has a budget (docs/models.md).")
    exclusive_gpu: bool = Field(default=False, description="Land only on GPUs nobody shares (profiles with `replicas: 1`); while any model asks, those GPUs are kept for such models.")
    cpu: Cpu = Field(default="250m", description="CPU request.")
    memory: Memory = Field(default="512Mi", description="Memory request and limit.")
    public_path: PublicPath | None = Field(default=None, description="Path on the ingress host that routes here (`vllm`: only `<path>/v1`, and it needs `secretEnv: {VLLM_API_KEY: ...}`); internal only when unset.")
    health_path: HttpPath = Field(default="/healthz", description="HTTP path of the liveness/readiness/startup probes (`vllm`: `/health`).")
    health: Literal["http", "tcp"] = Field(default="http", description="How the probes check the server: an HTTP GET of `healthPath`, or a TCP connect for an image with no health endpoint.")
    metrics_path: HttpPath | None = Field(default=None, description="Prometheus metrics path on `port`, scraped when `monitoring.enabled` (`vllm`: always `/metrics`); not scraped when unset.")
    cpu_limit: Cpu = Field(default="2", description="CPU limit.")
    max_replicas: int | None = Field(default=None, ge=1, le=100, description="Autoscaling ceiling for public models; 3 x replicas when unset.")
    talks_to: list[DnsLabel] = Field(default_factory=list, description="Models (or `redis`) this one calls; the network policies allow only these.")
    tf: TfModel | None = Field(default=None, description="TF-Serving model settings (kind `tf-model`).")
    vllm: Vllm | None = Field(default=None, description="vLLM server settings (kind `vllm`).")
    env: dict[EnvName, Unexpanded] = Field(default_factory=dict, description="Environment variables (plain text: no secrets here). `$(` is refused (Kubernetes expands it); `$$(` is a literal `$(`.")
    secret_env: dict[EnvName, ConfigKeyName] = Field(default_factory=dict, description="Environment variable -> secret config key (`pulumi config set --secret KEY`); passed through a Secret of the model, never in the plan.")
    command: list[Unexpanded] = Field(default_factory=list, description="Container command (the image's entrypoint when empty); no `$(` (see `env`).")
    args: list[Unexpanded] = Field(default_factory=list, description="Container arguments; no `$(` (see `env`).")
    cache: ModelCache | None = Field(default=None, description="A persistent volume for downloaded weights (a claim of its own, ReadWriteOnce: `replicas` 1); the model may then reach HTTPS (port 443) anywhere but the cluster's networks and the cloud metadata service. None when unset.")
    shm_size: Memory | None = Field(default=None, description="Size of `/dev/shm` (a memory-backed emptyDir, counted in the pod's memory); the container runtime's default when unset.")
    probes: Probes = Field(default_factory=Probes, description="Probe settings and the startup budget.")
    pull_secret: bool | None = Field(default=None, description="Pull the image with the `registry` credentials: true needs `registry`; false for a public image; when unset, used if `registry` is set.")
    security: ModelSecurity | None = Field(default=None, description="Escape hatch from the default restricted security context, for a model server that needs it (see docs/security.md).")

    @model_validator(mode="after")
    def _kind_fields(self) -> Model:
        if self.kind == "service" and self.image is None:
            raise ValueError("a `service` model needs `image`")
        if self.kind == "tf-model" and self.tf is None:
            raise ValueError("a `tf-model` needs `tf` (basePath and version)")
        if self.kind == "vllm":
            self._vllm_fields()
        elif self.vllm is not None:
            raise ValueError("`vllm` is only used with `kind: vllm`; remove it or set the kind")
        if (self.gpu_memory is not None or self.exclusive_gpu) and self.placement != "gpu":
            raise ValueError("`gpuMemory` and `exclusiveGpu` need `placement: gpu`")
        if (self.gpu_memory is not None or self.exclusive_gpu) and self.kind == "service" and not self.gpus:
            raise ValueError("`gpuMemory` and `exclusiveGpu` are for pods that hold a GPU; set `gpus: 1`")
        if self.health == "tcp" and (self.probes.path is not None or "health_path" in self.model_fields_set):
            raise ValueError("`health: tcp` probes by connecting; remove `healthPath` / `probes.path` or use `health: http`")
        if self.gpus and self.placement != "gpu":
            raise ValueError("`gpus` needs `placement: gpu`")
        if self.kind == "tf-model" and self.placement != "gpu":
            raise ValueError("a `tf-model` is served by TF-Serving on the GPU nodes; use `placement: gpu`")
        pod_settings = {"env", "secret_env", "command", "args", "cache", "shm_size", "probes", "pull_secret", "security"}
        pod_settings |= {"health", "metrics_path", "gpu_memory", "exclusive_gpu"}
        if self.kind == "tf-model" and pod_settings & self.model_fields_set:
            raise ValueError("a `tf-model` runs in TF-Serving: env, secretEnv, command, args, cache, shmSize, probes, pullSecret, security, "
                             "health, metricsPath, gpuMemory and exclusiveGpu are for `service` models")
        if set(self.env) & set(self.secret_env):
            raise ValueError(f"`env` and `secretEnv` both set {', '.join(sorted(set(self.env) & set(self.secret_env)))}; keep each variable in one")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("`maxReplicas` is below `replicas`")
        return self

    @property
    def gpu_count(self) -> int:
        """`nvidia.com/gpu` per pod: `gpus`, or a vLLM server's tensor-parallel size."""
        return self.vllm.tensor_parallel_size if self.vllm is not None else self.gpus

    def _vllm_fields(self) -> None:
        if self.vllm is None:
            raise ValueError("a `vllm` model needs `vllm` (model, revision, maxModelLen)")
        if self.placement != "gpu":
            raise ValueError("a `vllm` model runs on GPU workstations; use `placement: gpu`")
        if self.gpu_memory is None:
            raise ValueError("a `vllm` model needs `gpuMemory`: its budget, passed to the server as its share of the GPU")
        server = sorted({n for n in self.env if n.startswith(VLLM_SERVER_ENV)}
                        | {n for n in self.secret_env if n.startswith(VLLM_SERVER_ENV) and n not in VLLM_TOKENS})
        if server:
            raise ValueError(f"a `vllm` model's environment may not set {', '.join(server)}: variables of vLLM, the Hub, Python, "
                             "CUDA and the loader reach past its settings (dev routes, runtime LoRA, another Hub); only "
                             f"{' and '.join(sorted(VLLM_TOKENS))} (in secretEnv) of those")
        written = {"gpus", "command", "args", "tf", "health", "health_path", "metrics_path"} & self.model_fields_set
        if written:
            raise ValueError(f"a `vllm` model's {', '.join(sorted(written))} come from its `vllm` settings (gpus = tensorParallelSize, "
                             "probes on /health, metrics on /metrics); remove them")


class TfServing(Schema):
    image: PinnedImage = Field(default="tensorflow/serving:2.18.0-gpu", description="TF-Serving image (GPU build), pinned.")
    gpus: int = Field(default=1, ge=1, le=1, description="`nvidia.com/gpu` for the server (1 with time-slicing).")
    memory: Memory = Field(default="8Gi", description="Memory request and limit.")
    gpu_memory: Memory | None = Field(default=None, description="GPU memory the server may use (its budget, e.g. `6Gi`): it lands only on GPUs whose share holds it and gets it as `--per_process_gpu_memory_fraction`; unset, TensorFlow takes what it finds free (docs/models.md).")
    poll_seconds: int = Field(default=30, ge=5, le=3600, description="How often TF-Serving re-reads its model list.")
    storage_size: Memory = Field(default="50Gi", description="Size of the volume holding local models (`/models/...`).")
    storage_class: StorageClassName | None = Field(default=None, description="Storage class of that volume; MicroK8s' `microk8s-hostpath` (addon hostpath-storage) when unset.")

    @property
    def exclusive_gpu(self) -> bool:
        return False

    @property
    def gpu_count(self) -> int:
        return self.gpus


class Registry(Schema):
    server: HostAddress = Field(description="Private registry host, e.g. `ghcr.io`.")
    username: str = Field(description="Registry user.")
    password_config: ConfigKeyName = Field(description="Secret config key holding the registry password or token.")
