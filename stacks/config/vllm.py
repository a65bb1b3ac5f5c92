"""`models[].vllm`: an LLM served by vLLM's OpenAI-compatible server (kind `vllm`).

The program writes the server's command line from these settings; `extraArgs` may add only the
flags of `EXTRA_ARGS`, each with a value of its pattern, so no setting can reach past the
server (no `--trust-remote-code`, no host, port, model or memory share of the user's).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from stacks.config.types import Memory, Schema, strict

# vLLM image: the tag, and the digest published for it (where it was read and how to check it:
# docs/models.md); its source facts are in docs/upstream.md.
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec291c427bb1176dc7c93a85845c"

# Flags `extraArgs` may pass, with the pattern of their value (None: a switch without value).
EXTRA_ARGS: dict[str, str | None] = {
    "--dtype": r"auto|half|float16|bfloat16|float|float32",
    "--quantization": r"awq|gptq|fp8|bitsandbytes|compressed-tensors|gguf|marlin|awq_marlin|gptq_marlin",
    "--kv-cache-dtype": r"auto|fp8|fp8_e4m3|fp8_e5m2",
    "--max-num-seqs": r"[1-9][0-9]{0,4}",
    "--max-num-batched-tokens": r"[1-9][0-9]{0,6}",
    "--enable-prefix-caching": None,
    "--no-enable-prefix-caching": None,
    "--enforce-eager": None,
    "--seed": r"[0-9]{1,9}",
    "--generation-config": r"auto|vllm",
    "--tool-call-parser": r"[a-z0-9_-]{1,40}",
    "--enable-auto-tool-choice": None,
    "--reasoning-parser": r"[a-z0-9_-]{1,40}",
    "--chat-template-content-format": r"auto|string|openai",
    "--swap-space": r"[0-9]{1,3}",
}

HF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
CACHE_PATH = re.compile(r"/cache(/[A-Za-z0-9._-]+)+")


def _model_ref(value: str) -> str:
    if HF_ID.fullmatch(value):
        return value
    if CACHE_PATH.fullmatch(value) and ".." not in value.split("/"):
        return value
    raise ValueError("not a model; use a Hugging Face id 'org/name' (e.g. 'Qwen/Qwen2.5-0.5B-Instruct') "
                     "or a path in the model cache under '/cache/' (e.g. '/cache/models/my-model')")


def _extra_arg(value: str) -> str:
    flag, eq, arg = value.partition("=")
    if flag not in EXTRA_ARGS:
        raise ValueError(f"flag not allowed; extraArgs may pass only {', '.join(sorted(EXTRA_ARGS))} "
                         "(the program sets model, port, memory share, context and parallelism itself)")
    pattern = EXTRA_ARGS[flag]
    if pattern is None and eq:
        raise ValueError(f"{flag} takes no value; write it alone")
    if pattern is not None and not (eq and re.fullmatch(pattern, arg)):
        raise ValueError(f"{flag} needs a value written as '{flag}=VALUE' with VALUE matching {pattern}")
    return value


ModelRef = Annotated[str, AfterValidator(_model_ref)]
ExtraArg = Annotated[str, AfterValidator(_extra_arg)]
Revision = Annotated[str, strict(r"[0-9a-f]{40}", "not a pinned revision; use the model repository's full 40-hex commit id (a branch or tag can move)")]
ServedName = Annotated[str, strict(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}", "not a served model name; use up to 128 of letters, digits, '.', '_', '-', '/'")]


class Vllm(Schema):
    model: ModelRef = Field(description="The model: a Hugging Face id (`org/name`, downloaded at start into the cache) or a path in the model cache (`/cache/...`, needs the model's `cache` claim).")
    revision: Revision | None = Field(default=None, description="The Hugging Face commit id the weights are pinned to (required for a Hugging Face id).")
    served_model_name: ServedName | None = Field(default=None, description="The name clients send as `model`; the catalog entry's `name` when unset.")
    max_model_len: int = Field(ge=128, le=1048576, description="Maximum context in tokens (`--max-model-len`): with `gpuMemory` it decides what the KV cache must hold.")
    tensor_parallel_size: int = Field(default=1, ge=1, le=8, description="GPUs one server spans, all on one host (`--tensor-parallel-size`); above 1 only on exclusive GPUs (profiles with `replicas: 1`).")
    extra_args: list[ExtraArg] = Field(default_factory=list, description="More server flags, only from the allow-list (docs/models.md), as `--flag=value` or `--flag`.")
    cache_size: Memory = Field(default="20Gi", description="Size limit of each replica's own cache volume (an emptyDir: downloaded weights, compile caches, HOME) when the model has no `cache` claim.")
    queue_target: int = Field(default=4, ge=1, le=1000, description="Requests waiting per replica (vllm:num_requests_waiting) the autoscaler keeps to (public models).")

    @model_validator(mode="after")
    def _revision(self) -> Vllm:
        if HF_ID.fullmatch(self.model) and self.revision is None:
            raise ValueError("a Hugging Face model needs `revision` (the 40-hex commit id) so a new upload is never served by accident")
        if not HF_ID.fullmatch(self.model) and self.revision is not None:
            raise ValueError("`revision` is for Hugging Face ids; a model in the cache is what its files are")
        flags = [a.partition("=")[0] for a in self.extra_args]
        if len(flags) != len(set(flags)):
            raise ValueError("extraArgs names a flag twice; keep one")
        return self
