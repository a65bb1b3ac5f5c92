"""Shared by the workload tests: the dev stack with a TF model fetched from an HTTPS source, and
a Deployment's pod spec."""

from __future__ import annotations

from typing import Any

from tools.render.evaluate import Evaluation

MODEL_SHA = "0" * 64
FETCHED = {"source": "https://models.example.com/ocr-detector-3.tar.gz", "sha256": MODEL_SHA}


def with_model_source(raw: dict[str, Any]) -> dict[str, Any]:
    """The dev stack with ocr-detector's files fetched from an HTTPS source."""
    next(m for m in raw["models"] if m["name"] == "ocr-detector")["tf"].update(FETCHED)
    return raw


def pod(ev: Evaluation, name: str) -> dict[str, Any]:
    return dict(ev.by_name(f"{name}-deployment").inputs["spec"]["template"]["spec"])
