"""Shared by the workload tests: the dev stack with its TF models' sources changed or replaced by
object-store base paths, and a Deployment's pod spec."""

from __future__ import annotations

from typing import Any

from tests.support.helpers import TEST_SECRETS
from tools.render.evaluate import Evaluation

MODEL_SHA = "0" * 64
FETCHED = {"source": "https://models.example.com/ocr-detector-3.tar.gz", "sha256": MODEL_SHA}


def with_model_source(raw: dict[str, Any]) -> dict[str, Any]:
    """The dev stack with ocr-detector's files fetched from FETCHED."""
    next(m for m in raw["models"] if m["name"] == "ocr-detector")["tf"].update(FETCHED)
    return raw


def pod(ev: Evaluation, name: str) -> dict[str, Any]:
    return dict(ev.by_name(f"{name}-deployment").inputs["spec"]["template"]["spec"])



SECRET_CANARY = "CANARY-HF-TOKEN-5e8d1f"
CATALOG_SECRETS = TEST_SECRETS | {"hfToken": SECRET_CANARY}
# A model server as a real one is described: environment, a token from a secret, its own
# command and arguments, a weights cache, shared memory, slow start, a server that writes
# beside its code under a UID of its image.
LLM_SERVER: dict[str, Any] = {
    "name": "llm-server", "image": "ghcr.io/example/llm-server:0.6.3", "placement": "gpu", "gpus": 1, "port": 8000,
    "memory": "3Gi", "env": {"MODEL_ID": "example/ocr-llm-7b", "HF_HOME": "/cache"}, "secretEnv": {"HF_TOKEN": "hfToken"},
    "command": ["python3", "-m", "server"], "args": ["--port", "8000", "--max-batch", "8"],
    "cache": {"size": "40Gi", "mountPath": "/cache"}, "shmSize": "1Gi",
    "probes": {"path": "/health", "periodSeconds": 15, "failureThreshold": 4, "initialDelaySeconds": 5, "startupSeconds": 1200},
    "security": {"runAsUser": 1000, "writableRootFilesystem": True},
}


def with_llm_server(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack with LLM_SERVER added to its catalog."""
    raw["models"].append(dict(LLM_SERVER))
    return raw
