"""A `vllm` catalog entry: the server's command line, environment and volumes under the
restricted Pod Security level, its probes and startup budget, its route, its secret token, the
allow-list of extra flags, and autoscaling on queue depth through the metrics adapter."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.kit.kube import CLOUD_NODES
from components.workloads.vllm import startup_seconds
from stacks.load import ConfigError
from tests.support.helpers import PROJECT, TEST_SECRETS, evaluate_config, stack_config, unavailable
from tests.support.workloads import pod
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal, write_all

ASSETS = PROJECT / "charts" / "monitoring"
TOKEN_CANARY = "CANARY-HF-TOKEN-vllm-91c2"


@pytest.fixture(scope="module")
def llm() -> Evaluation:
    """The `llm` example stack: the reference deployment with `chat` beside the OCR engines."""
    return evaluate_config(stack_config("llm"), stack="llm")


def chat(raw: dict[str, Any]) -> dict[str, Any]:
    return dict(next(m for m in raw["models"] if m["name"] == "chat"))


def with_chat(**change: Any) -> dict[str, Any]:
    raw = stack_config("llm")
    next(m for m in raw["models"] if m["name"] == "chat").update(change)
    return raw


def rejected(raw: dict[str, Any]) -> list[str]:
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    assert seen.resources == []  # refused before anything is registered
    return err.value.problems


def test_the_server_command_line_comes_from_the_catalog(llm: Evaluation) -> None:
    c = pod(llm, "chat")["containers"][0]
    assert c["image"] == "vllm/vllm-openai:v0.11.0@sha256:014a95f21c9edf6abe0aea6b07353f96baa4ec291c427bb1176dc7c93a85845c"
    assert c["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert c["args"] == [
        "--model=Qwen/Qwen2.5-0.5B-Instruct", "--revision=7ae557604adf67be50417f59c2c2f167def9a775",
        "--served-model-name=qwen2.5-0.5b-instruct", "--port=8000", "--max-model-len=8192",
        "--tensor-parallel-size=1", "--gpu-memory-utilization=0.20",  # 6Gi of a 24Gi GPU, less the 1Gi CUDA reserve
    ]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_server_writes_only_to_volumes_as_a_restricted_non_root_pod(llm: Evaluation) -> None:
    spec = pod(llm, "chat")
    c = spec["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["runAsUser"] == 10001 and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(mounts) == {"/tmp", "/home/vllm", "/cache", "/dev/shm"}
    assert volumes[mounts["/cache"]]["emptyDir"] == {"sizeLimit": "10Gi"}  # per replica, on the node's disk
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}  # the API key comes from the model's Secret
    assert env["HOME"] == "/home/vllm" and env["HF_HOME"] == "/cache/huggingface" and env["VLLM_CACHE_ROOT"] == "/cache/vllm"
    assert env["XDG_CACHE_HOME"].startswith("/cache/") and env["VLLM_NO_USAGE_STATS"] == "1"
    writable = {path for path in mounts}
    # UID 10001 has no passwd entry in the image: getpass.getuser() (torch's inductor cache
    # path) reads USER/LOGNAME first, and the compile caches go to the cache volume.
    assert env["USER"] == env["LOGNAME"] == "vllm"
    for value in (env["HOME"], env["HF_HOME"], env["VLLM_CACHE_ROOT"], env["XDG_CACHE_HOME"], env["TORCHINDUCTOR_CACHE_DIR"],
                  env["TRITON_CACHE_DIR"]):
        assert any(value == w or value.startswith(w + "/") for w in writable), value
    assert "HF_HUB_OFFLINE" not in env  # a Hub model is downloaded at start


def test_probes_use_health_and_the_startup_budget_grows_with_the_model(llm: Evaluation) -> None:
    c = pod(llm, "chat")["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": 8000}, probe
    budget = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    assert budget == 600 + 100 * 6  # base + per GiB of its 6Gi budget
    assert startup_seconds(12 * 1024) == 1800 and startup_seconds(500 * 1024) == 7200  # grows, within the probe's cap
    raw = with_chat(probes={"startupSeconds": 300})
    c = pod(evaluate_config(raw), "chat")["containers"][0]
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 300  # set: kept


def test_openai_routes_under_the_public_path_and_egress_only_for_the_download(llm: Evaluation) -> None:
    route = llm.by_name("chat-route").inputs["spec"]
    (rule,) = route["rules"]
    # Only the OpenAI routes (behind the API key): not /metrics, /tokenize or /scale_elastic_ep.
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/llm/v1"}}]
    # /llm/v1/chat/completions reaches the server as /v1/chat/completions
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}}}]
    assert "filters" not in llm.by_name("receipt-api-route").inputs["spec"]["rules"][0]
    egress = llm.by_name("chat-download").inputs["spec"]["egress"]
    assert egress[0]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.1.0.0/16" in egress[0]["to"][0]["ipBlock"]["except"]


def test_the_hugging_face_token_is_a_secret_in_the_environment_never_on_the_command_line(tmp_path: Path) -> None:
    raw = with_chat(secretEnv={"HF_TOKEN": "hfToken", "VLLM_API_KEY": "chatApiKey"})
    ev = evaluate_config(raw, secrets=TEST_SECRETS | {"hfToken": TOKEN_CANARY, "chatApiKey": "test-key"})
    c = pod(ev, "chat")["containers"][0]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "chat-env", "key": "HF_TOKEN"}}} in c["env"]
    assert not any(TOKEN_CANARY in a or "HF_TOKEN" in a or "$(" in a for a in c["args"] + c["command"])
    data = ev.by_name("chat-env").inputs["stringData"]
    assert isinstance(data, Secret) or all(isinstance(v, Secret) for v in data.values())
    assert reveal(data) == {"HF_TOKEN": TOKEN_CANARY, "VLLM_API_KEY": "test-key"}
    write_all(ev, tmp_path)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert TOKEN_CANARY not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(("change", "key", "fix"), [
    ({"vllm": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "maxModelLen": 4096}}, "models[5].vllm", "needs `revision`"),
    ({"vllm": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "revision": "main", "maxModelLen": 4096}}, "models[5].vllm.revision", "40-hex commit id"),
    ({"vllm": {"model": "../etc/passwd", "maxModelLen": 4096}}, "models[5].vllm.model", "Hugging Face id"),
    ({"vllm": {"model": "/cache/models/x", "maxModelLen": 4096}}, "models[5].vllm.model", "needs the model's `cache` claim"),
    ({"vllm": {"model": "a/b", "revision": "0" * 40, "maxModelLen": 4096, "extraArgs": ["--trust-remote-code"]}},
     "models[5].vllm.extraArgs[0]", "flag not allowed"),
    ({"vllm": {"model": "a/b", "revision": "0" * 40, "maxModelLen": 4096, "extraArgs": ["--dtype=evil;rm"]}},
     "models[5].vllm.extraArgs[0]", "--dtype needs a value"),
    ({"vllm": {"model": "a/b", "revision": "0" * 40, "maxModelLen": 4096, "extraArgs": ["--gpu-memory-utilization=0.9"]}},
     "models[5].vllm.extraArgs[0]", "flag not allowed"),
    ({"args": ["--port", "9"]}, "models[5]", "come from its `vllm` settings"),
    ({"gpuMemory": None}, "models[5]", "needs `gpuMemory`"),
    ({"placement": "cloud"}, "models[5]", "use `placement: gpu`"),
    ({"name": "vllm"}, "models[5].name", "sets VLLM_PORT"),
    ({"env": {"VLLM_SERVER_DEV_MODE": "1"}}, "models[5]", "VLLM_SERVER_DEV_MODE"),
    ({"env": {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"}}, "models[5]", "VLLM_ALLOW_RUNTIME_LORA_UPDATING"),
    ({"env": {"HF_ENDPOINT": "https://hub.example.com"}}, "models[5]", "HF_ENDPOINT"),
    ({"env": {"PYTHONPATH": "/cache/x"}}, "models[5]", "PYTHONPATH"),
    ({"secretEnv": {"LD_PRELOAD": "preload", "VLLM_API_KEY": "chatApiKey"}}, "models[5]", "LD_PRELOAD"),
    ({"secretEnv": {}}, "models[5].secretEnv", "needs an API key: secretEnv: {VLLM_API_KEY: "),
])
def test_bad_vllm_settings_are_one_line_naming_the_key(change: dict[str, Any], key: str, fix: str) -> None:
    raw = with_chat(**change)
    if change.get("gpuMemory", 1) is None:
        del next(m for m in raw["models"] if m["name"] == "chat")["gpuMemory"]
    (problem,) = rejected(raw)
    assert problem.startswith(f"hybrid-ai:{key}") and fix in problem, problem


@pytest.mark.parametrize("image", ["registry.example.com/vllm/vllm-openai:v0.11.0@sha256:" + "4" * 64,
                                   "registry.example.com/vllm/vllm-openai@sha256:" + "4" * 64])
def test_a_vllm_model_may_pin_its_own_image_by_digest(image: str) -> None:
    assert pod(evaluate_config(with_chat(image=image)), "chat")["containers"][0]["image"] == image


def test_an_image_with_a_tag_and_a_malformed_digest_is_refused() -> None:
    (problem,) = rejected(with_chat(image="vllm/vllm-openai:v0.11.0@sha256:" + "4" * 63))
    assert problem.startswith("hybrid-ai:models[5].image") and "not pinned" in problem, problem


def test_a_vllm_model_keeps_its_own_environment_and_the_tokens_it_needs() -> None:
    raw = with_chat(env={"OMP_NUM_THREADS": "4"}, secretEnv={"HF_TOKEN": "hfToken", "VLLM_API_KEY": "chatApiKey"})
    secrets = TEST_SECRETS | {"hfToken": "hf-test", "chatApiKey": "key-test"}
    env = {e["name"] for e in pod(evaluate_config(raw, secrets), "chat")["containers"][0]["env"]}
    assert {"OMP_NUM_THREADS", "HF_TOKEN", "VLLM_API_KEY"} <= env


def test_allow_listed_extra_args_reach_the_server() -> None:
    v = chat(stack_config("llm"))["vllm"] | {"extraArgs": ["--dtype=half", "--enable-prefix-caching", "--max-num-seqs=32"]}
    c = pod(evaluate_config(with_chat(vllm=v)), "chat")["containers"][0]
    assert c["args"][-3:] == ["--dtype=half", "--enable-prefix-caching", "--max-num-seqs=32"]


def test_a_public_vllm_model_autoscales_on_queue_depth_and_cpu_models_keep_cpu(llm: Evaluation) -> None:
    hpa = llm.by_name("chat-hpa").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)
    assert hpa["metrics"] == [{"type": "Pods", "pods": {"metric": {"name": "vllm_num_requests_waiting"},
                                                        "target": {"type": "AverageValue", "averageValue": "4"}}}]
    receipt = llm.by_name("receipt-api-hpa").inputs["spec"]["metrics"]
    assert receipt == [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    adapter = llm.by_name("monitoring-metrics-adapter").inputs
    assert (adapter["chart"], adapter["version"]) == ("prometheus-adapter", "5.3.0")
    values = adapter["values"]
    assert values["prometheus"] == {"url": "http://kube-prometheus-stack-prometheus.monitoring.svc", "port": 9090}
    assert values["rules"]["default"] is False and values["rules"]["resource"] == {}  # metrics.k8s.io stays metrics-server's
    (rule,) = values["rules"]["custom"]
    assert rule["name"] == {"matches": "^vllm:num_requests_waiting$", "as": "vllm_num_requests_waiting"}
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert values["nodeSelector"] == CLOUD_NODES  # cluster-wide reader: never on a workstation


def test_what_a_workstations_pods_serve_stays_within_their_own_names_and_size(llm: Evaluation) -> None:
    """A model pod (or its node's root) may serve anything at its metrics port: a vLLM job keeps
    only vLLM's names and writes the served name over `model_name`, TF-Serving's keeps only its
    own, a `service` model's may not use another exporter's names, and each scrape is bounded."""
    raw = stack_config("llm")
    next(m for m in raw["models"] if m["name"] == "receipt-api")["metricsPath"] = "/metrics"
    jobs = {j["job_name"]: j for j in evaluate_config(raw).by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]}
    vllm, tf, service = jobs["model-chat"], jobs["tf-serving"], jobs["model-receipt-api"]
    assert vllm["metric_relabel_configs"] == [{"source_labels": ["__name__"], "regex": "vllm:.+", "action": "keep"},
                                              {"target_label": "model_name", "replacement": "qwen2.5-0.5b-instruct"}]
    assert tf["metric_relabel_configs"] == [{"source_labels": ["__name__"], "regex": ":tensorflow:.+", "action": "keep"}]
    (drop,) = service["metric_relabel_configs"]
    assert drop["action"] == "drop" and drop["source_labels"] == ["__name__"]
    for name in ("DCGM_EXP_XID_ERRORS_COUNT", ":tensorflow:serving:request_count", "vllm:num_requests_waiting", "node_load1",
                 "kube_node_status_condition", "certmanager_certificate_expiration_timestamp_seconds", "hybridai_wireguard_peer_last_handshake_seconds"):
        assert re.fullmatch(drop["regex"], name), name
    assert not re.fullmatch(drop["regex"], "receipt_requests_total")
    for job in (vllm, tf, service):
        assert (job["sample_limit"], job["label_limit"], job["label_value_length_limit"]) == (20000, 30, 512), job["job_name"]


def test_prometheus_scrapes_each_vllm_pod_with_the_labels_the_adapter_maps(llm: Evaluation) -> None:
    jobs = {j["job_name"]: j for j in llm.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]}
    job = jobs["model-chat"]
    assert job["metrics_path"] == "/metrics" and job["relabel_configs"][0]["regex"] == "chat;8000"
    targets = {r["target_label"] for r in job["relabel_configs"][1:]}
    assert targets == {"namespace", "pod"}
    policy = llm.by_name("monitoring-scrape-chat").inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "chat"}}
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]


def test_no_adapter_without_a_queue_autoscaled_model() -> None:
    raw = with_chat()
    del next(m for m in raw["models"] if m["name"] == "chat")["publicPath"]
    del next(m for m in raw["models"] if m["name"] == "chat")["maxReplicas"]
    ev = evaluate_config(raw)
    names = {r.name for r in ev.resources}
    assert "monitoring-metrics-adapter" not in names and "chat-hpa" not in names and "monitoring-scrape-chat" in names


def test_a_public_vllm_model_needs_monitoring() -> None:
    raw = stack_config("llm")
    del raw["monitoring"]
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:models[5].publicPath:") and "monitoring.enabled" in problem


def test_a_weakened_llm_alert_fails_its_promtool_case(tmp_path: Path) -> None:
    tool = shutil.which("promtool")
    if tool is None:
        unavailable("promtool not installed (Debian package `prometheus`)")
    text = (ASSETS / "alerts.yaml").read_text()
    rule = '(vllm:num_requests_waiting{job=~"model-.+"}) > 10'
    assert rule in text
    (tmp_path / "alerts.yaml").write_text(text.replace(rule, rule.replace("> 10", "> 50")))
    shutil.copy(ASSETS / "alerts_test.yaml", tmp_path)
    result = subprocess.run([str(tool), "test", "rules", "alerts_test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "LlmRequestsQueued" in result.stdout + result.stderr


def test_the_llm_alerts_and_dashboard_query_vllms_metrics() -> None:
    groups = {g["name"]: g for g in yaml.safe_load((ASSETS / "alerts.yaml").read_text())["groups"]}
    assert {r["alert"] for r in groups["hybrid-ai.llm"]["rules"]} == {"LlmRequestsQueued", "LlmKvCacheNearlyFull", "LlmTimeToFirstTokenHigh"}
    board = json.loads((ASSETS / "dashboards" / "llm.json").read_text())
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in ("vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "vllm:time_to_first_token_seconds_bucket"):
        assert metric in exprs, metric


def test_prometheus_accepts_the_model_scrape_jobs(llm: Evaluation, tmp_path: Path) -> None:
    tool = shutil.which("promtool")
    if tool is None:
        unavailable("promtool not installed (Debian package `prometheus`)")
    rendered = llm.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]
    assert any(j["job_name"] == "model-chat" for j in rendered)
    # Debian's Prometheus is built without Kubernetes discovery: the real parser checks each job's
    # relabelling, path and name with a static target standing in for pod discovery.
    jobs = [{k: v for k, v in j.items() if k != "kubernetes_sd_configs"} | {"static_configs": [{"targets": ["192.0.2.1:8000"]}]}
            for j in rendered]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": jobs}))
    result = subprocess.run([tool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = [dict(j, relabel_configs=[dict(r, action="kept") for r in j["relabel_configs"]]) for j in jobs]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": broken}))
    assert subprocess.run([tool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, timeout=60).returncode != 0


def test_the_post_deploy_probe_takes_a_public_model_whose_health_is_routed() -> None:
    """A vLLM server's /health is not on the Gateway (only its /v1 routes are): the probe takes
    the next public model with an HTTP health path, and none when there is no such model."""
    from components.kit.shell import split_command

    raw = stack_config("llm")
    raw["models"] = [m for m in raw["models"] if m["name"] == "chat"] + [m for m in raw["models"] if m["name"] != "chat"]
    _, params = split_command(evaluate_config(raw).by_name("cluster-verify-check").inputs["create"])
    assert params["PROBE_URL"] == "https://api.example.com/receipt/healthz"
    next(m for m in raw["models"] if m["name"] == "receipt-api")["health"] = "tcp"
    _, params = split_command(evaluate_config(raw).by_name("cluster-verify-check").inputs["create"])
    assert params["PROBE_URL"] == ""  # a TCP-probed model and a vLLM server: no URL the Gateway routes to a health path
