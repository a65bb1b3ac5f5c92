"""Cross-section rules of `vllm` models: what their server needs from the rest of the stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig

# Kubernetes gives every pod `<SERVICE>_PORT=tcp://...` for each Service of its namespace; a
# Service named `vllm` sets VLLM_PORT, which vLLM reads as its own port number and fails on.
RESERVED_NAMES = ("vllm",)


def llm_models(cfg: StackConfig) -> list[str]:
    errors = []
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        if m.name in RESERVED_NAMES:
            errors.append(f"{key}.name: a Service named '{m.name}' sets VLLM_PORT in every pod of the namespace, which breaks vLLM servers; pick another name")
        if m.kind != "vllm" or m.vllm is None:
            continue
        if m.vllm.revision is None and m.cache is None:
            errors.append(f"{key}.vllm.model: a model in the cache needs the model's `cache` claim holding it (each replica's own cache starts empty); "
                          "add `cache` or use a Hugging Face id with `revision`")
        if m.cache is not None and m.cache.mount_path != "/cache" and m.vllm.model.startswith("/cache/"):
            errors.append(f"{key}.cache.mountPath: the model path is under /cache; mount the cache there")
        public = bool(m.public_path and cfg.ingress.domain)
        if m.public_path and "VLLM_API_KEY" not in m.secret_env:
            errors.append(f"{key}.secretEnv: a public vllm model needs an API key: secretEnv: {{VLLM_API_KEY: <key>}} and "
                          "`pulumi config set --secret <key>` (clients send it as a bearer token), or remove publicPath")
        if public and not cfg.monitoring.enabled:
            errors.append(f"{key}.publicPath: a public vllm model autoscales on its queue depth, which Prometheus reads; set monitoring.enabled: true")
        if public and m.cache is not None and (m.max_replicas or 3 * max(m.replicas, 1)) > 1:
            errors.append(f"{key}.cache: a public vllm model scales out on queue depth, and a cache claim is one node's volume; "
                          "remove `cache` (each replica then gets its own `vllm.cacheSize`) or set maxReplicas: 1")
    return errors
