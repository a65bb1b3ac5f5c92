"""The generic `service` kind's `health` (HTTP or TCP probes) and `metricsPath` (scraped by
Prometheus, let in by a policy of its own) for server images that do not follow our defaults."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config.gpu_budget import SHARE_LABEL
from stacks.load import ConfigError
from tests.support.helpers import evaluate_config, stack_config
from tests.support.workloads import pod
from tools.render.evaluate import Evaluation


def with_layout(**change: Any) -> dict[str, Any]:
    raw = stack_config("dev")
    next(m for m in raw["models"] if m["name"] == "layout-engine").update(change)
    return raw


def test_tcp_health_probes_by_connecting() -> None:
    c = pod(evaluate_config(with_layout(health="tcp")), "layout-engine")["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["tcpSocket"] == {"port": 8000} and "httpGet" not in c[probe], probe


def test_http_health_is_the_default(dev: Evaluation) -> None:
    c = pod(dev, "layout-engine")["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}


def test_tcp_health_with_a_path_is_refused() -> None:
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(with_layout(health="tcp", healthPath="/ready"), into=seen)
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:models[2]: `health: tcp`") and seen.resources == []


def test_a_metrics_path_is_scraped_and_let_in() -> None:
    ev = evaluate_config(with_layout(metricsPath="/internal/metrics"))
    jobs = {j["job_name"]: j for j in ev.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]}
    job = jobs["model-layout-engine"]
    assert job["metrics_path"] == "/internal/metrics" and job["relabel_configs"][0]["regex"] == "layout-engine;8000"
    policy = ev.by_name("monitoring-scrape-layout-engine").inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "layout-engine"}}


def test_no_metrics_path_no_scrape(dev: Evaluation) -> None:
    jobs = {j["job_name"] for j in dev.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]}
    assert "model-layout-engine" not in jobs and "monitoring-scrape-layout-engine" not in {r.name for r in dev.resources}


def test_a_budget_on_a_pod_without_a_gpu_is_refused() -> None:
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(with_layout(gpus=0, gpuMemory="2Gi"), into=seen)
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:models[2]: `gpuMemory` and `exclusiveGpu` are for pods that hold a GPU") and seen.resources == []


def test_a_service_model_with_a_budget_keeps_to_gpus_whose_share_holds_it() -> None:
    raw = with_layout(gpuMemory="6Gi")
    raw["timeSlicing"]["profiles"][0]["memory"] = "24Gi"
    next(m for m in raw["models"] if m["name"] == "ocr-engine")["gpuMemory"] = "4Gi"  # every pod beside a budget needs one
    raw["tfServing"] = {"gpuMemory": "6Gi"}
    spec = pod(evaluate_config(raw), "layout-engine")
    expressions = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": SHARE_LABEL, "operator": "Gt", "values": ["6143"]} in expressions
    assert "--gpu-memory-utilization" not in " ".join(spec["containers"][0].get("args", []))  # its own server keeps to it
