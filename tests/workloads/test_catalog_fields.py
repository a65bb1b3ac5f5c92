"""What a catalog entry can say about its pod: environment, secret environment, command and
arguments, cache, shared memory, probes, pull secret, the security escape hatch; redis only
when used; the stack outputs an operator reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.workloads.model_args import ProbeTiming
from components.workloads.model_service import ModelServiceArgs, rollout_timeouts
from components.workloads.pod import probes
from components.workloads.tf_serving import HOSTPATH_STORAGE_CLASS
from stacks.config.consistency.catalog import HOSTPATH
from stacks.load import ConfigError
from tests.support.helpers import TEST_SECRETS, evaluate_config, stack_config
from tests.support.workloads import CATALOG_SECRETS, SECRET_CANARY, pod, with_llm_server
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal, write_all


@pytest.fixture(scope="module")
def llm() -> Evaluation:
    return evaluate_config(with_llm_server(stack_config("dev")), secrets=CATALOG_SECRETS)


def container(ev: Evaluation, name: str) -> dict[str, Any]:
    return dict(pod(ev, name)["containers"][0])


def test_env_command_args_and_secret_env_by_reference(llm: Evaluation) -> None:
    c = container(llm, "llm-server")
    assert c["command"] == ["python3", "-m", "server"] and c["args"] == ["--port", "8000", "--max-batch", "8"]
    assert c["env"] == [
        {"name": "HF_HOME", "value": "/cache"}, {"name": "MODEL_ID", "value": "example/ocr-llm-7b"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llm-server-env", "key": "HF_TOKEN"}}},
    ]
    secret = llm.by_name("llm-server-env")
    assert secret.type == "kubernetes:core/v1:Secret" and secret.inputs["type"] == "Opaque"
    data = secret.inputs["stringData"]
    assert isinstance(data, Secret) or all(isinstance(v, Secret) for v in data.values())
    assert reveal(data) == {"HF_TOKEN": SECRET_CANARY}
    # The Deployment names the Secret through its output: created after it.
    assert secret.urn in llm.by_name("llm-server-deployment").dependencies


def test_the_secret_value_is_in_no_rendered_file(llm: Evaluation, tmp_path: Path) -> None:
    write_all(llm, tmp_path)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert SECRET_CANARY not in path.read_text(errors="replace"), f"secret env leaked into {path.relative_to(tmp_path)}"
    plan = json.loads((tmp_path / "plan.json").read_text())
    secret = next(r for r in plan["resources"] if r["name"] == "llm-server-env")
    assert "[secret]" in json.dumps(secret["inputs"]["stringData"])


def test_cache_claim_and_memory_backed_shared_memory(llm: Evaluation) -> None:
    claim = llm.by_name("llm-server-cache").inputs
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "microk8s-hostpath", "resources": {"requests": {"storage": "40Gi"}}}
    spec = pod(llm, "llm-server")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "llm-server-cache"}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert (mounts["model-cache"], mounts["shm"]) == ("/cache", "/dev/shm")
    assert llm.by_name("llm-server-cache").urn in llm.by_name("llm-server-deployment").dependencies


def test_probes_follow_the_model_and_the_startup_budget(llm: Evaluation, dev: Evaluation) -> None:
    c = container(llm, "llm-server")
    assert c["readinessProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 15, "failureThreshold": 4}
    assert c["livenessProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "initialDelaySeconds": 5, "periodSeconds": 30, "failureThreshold": 4}
    assert c["startupProbe"] == {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 15, "failureThreshold": 80}  # 1200 s
    # The defaults stay what they were: 10 minutes to start.
    assert container(dev, "layout-engine")["startupProbe"]["failureThreshold"] == 60


def test_the_escape_hatch_changes_only_what_it_says(llm: Evaluation, dev: Evaluation) -> None:
    c = container(llm, "llm-server")
    assert c["securityContext"]["readOnlyRootFilesystem"] is False
    assert c["securityContext"]["runAsUser"] == 1000 and c["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in c["securityContext"]
    assert pod(llm, "llm-server")["securityContext"]["runAsUser"] == 1000
    annotations = llm.by_name("llm-server-deployment").inputs["metadata"]["annotations"]
    # checkov's waivers sit on this Deployment only, each with its reason (test_checkov_finds_nothing runs them).
    assert sorted(a.split("=")[0] for a in annotations.values()) == ["CKV_K8S_22", "CKV_K8S_35", "CKV_K8S_40"]
    assert sorted(annotations) == ["checkov.io/skip1", "checkov.io/skip2", "checkov.io/skip3"]
    assert container(dev, "ocr-engine")["securityContext"]["readOnlyRootFilesystem"] is True
    assert "annotations" not in dev.by_name("ocr-engine-deployment").inputs["metadata"]


def test_redis_only_when_a_model_talks_to_it(dev: Evaluation) -> None:
    assert "redis-deployment" in {r.name for r in dev.resources}
    raw = stack_config("dev")
    for m in raw["models"]:
        m["talksTo"] = [t for t in m.get("talksTo", []) if t != "redis"]
    without = evaluate_config(raw)
    assert not [r.name for r in without.resources if r.name.startswith("redis")]
    assert "redis" not in without.outputs["models"]


def test_pull_secret_per_model() -> None:
    raw = stack_config("dev")
    raw["registry"] = {"server": "ghcr.io", "username": "bot", "passwordConfig": "registryToken"}
    next(m for m in raw["models"] if m["name"] == "ocr-engine")["pullSecret"] = False
    next(m for m in raw["models"] if m["name"] == "receipt-api")["pullSecret"] = False  # cloud: by digest, or no secret
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "t"})
    assert "imagePullSecrets" not in pod(ev, "ocr-engine")
    assert pod(ev, "layout-engine")["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_adding_a_full_model_adds_only_its_own_resources(dev: Evaluation, llm: Evaluation) -> None:
    added, removed, modified = dev.changes(llm)
    assert added == {"llm-server", "llm-server-deployment", "llm-server-service", "llm-server-pdb", "llm-server-env", "llm-server-cache", "llm-server-download"}
    assert removed == set() and modified == set()


def rejected(raw: dict[str, Any], secrets: dict[str, str] | None = None) -> list[str]:
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, secrets=secrets or CATALOG_SECRETS, into=seen)
    assert seen.resources == []
    return err.value.problems


@pytest.mark.parametrize(("change", "key", "fix"), [
    ({"shmSize": "3Gi"}, "models[5].shmSize", "lower it or raise `memory`"),
    ({"cpu": "64", "cpuLimit": "64"}, "models[5].cpu", "lower it or use bigger hosts"),
    ({"memory": "512Gi"}, "models[5].memory", "lower it or use bigger hosts"),
    ({"pullSecret": True}, "models[5].pullSecret", "configure `registry`"),
    ({"cache": {"mountPath": "/tmp"}}, "models[5].cache.mountPath", "use another path"),
    ({"env": {"HF_TOKEN": "x"}}, "models[5]", "keep each variable in one"),
    ({"secretEnv": {"HF_TOKEN": "sshPrivateKey"}}, "models[5].secretEnv.HF_TOKEN", "keep each secret in its own key"),
    ({"security": {"runAsUser": 0}}, "models[5].security.runAsUser", "greater than or equal to 1"),
    ({"env": {"1BAD": "x"}}, "models[5].env.1BAD", "not an environment variable name"),
])
def test_bad_pod_settings_name_the_key(change: dict[str, Any], key: str, fix: str) -> None:
    raw = with_llm_server(stack_config("dev"))
    for h in raw["hosts"]:  # sizes known: requests are checked against the nodes
        h["size"] = {"cpus": 8, "memoryMb": 32768}
    raw["models"][-1].update(change)
    problems = rejected(raw)
    assert len(problems) == 1 and problems[0].startswith(f"hybrid-ai:{key}:") and fix in problems[0], problems


def test_secret_env_needs_its_secret_key() -> None:
    raw = with_llm_server(stack_config("dev"))
    problems = rejected(raw, secrets=TEST_SECRETS)
    assert problems == ["hybrid-ai:hfToken: missing (needed by models[5].secretEnv.HF_TOKEN); "
                        "set it with `pulumi config set --secret hfToken < FILE`"]


def test_a_tf_model_takes_no_pod_settings() -> None:
    raw = stack_config("dev")
    tf = next(m for m in raw["models"] if m.get("kind") == "tf-model")
    tf["probes"] = {"startupSeconds": 60}
    assert rejected(raw) == ["hybrid-ai:models[3]: a `tf-model` runs in TF-Serving: env, secretEnv, command, args, cache, shmSize, "
                             "probes, pullSecret, security, health, metricsPath, gpuMemory and exclusiveGpu are for `service` models"]


def test_outputs_for_the_operator(dev: Evaluation, llm: Evaluation) -> None:
    raw = stack_config("dev")
    raw["vpn"]["operatorPublicKey"] = "o" * 43 + "="
    operator = evaluate_config(raw).outputs["vpn"]["operatorConfig"]
    assert isinstance(operator, Secret) and "[Interface]" in reveal(operator)
    sites = dev.outputs["sites"]
    assert set(sites) == {s["name"] for s in stack_config("dev")["sites"]}
    assert sites["cloud"]["receipt"].startswith("control-plane,ingress; ")
    assert any("time-slicing x" in line and line.endswith("behind NAT") for line in sites["office"].values())
    assert dev.outputs["publicEndpoints"] == {"receipt-api": "https://api.example.com/receipt"}
    assert llm.outputs["publicEndpoints"] == dev.outputs["publicEndpoints"]  # internal models get no URL


def test_probes_may_use_their_own_port() -> None:
    args = ModelServiceArgs(namespace="ns", image="i:1", port=8000, probe=("http", "/v2/health/ready"), probe_port=8002,
                            probe_timing=ProbeTiming(period_seconds=7, startup_seconds=60))
    got = probes(args)
    assert {p["httpGet"]["port"] for p in got.values()} == {8002}
    assert got["startupProbe"]["failureThreshold"] == 9  # ceil(60 / 7): never less than the budget


# --- Review 5: a cache downloads, holds one node; rollouts stop the old pod first ----------

def test_a_cached_model_may_download_over_https_but_not_into_the_cluster_or_the_metadata_service(llm: Evaluation, dev: Evaluation) -> None:
    for ev, name in ((llm, "llm-server"), (dev, "ocr-engine")):
        policy = ev.by_name(f"{name}-download").inputs["spec"]
        assert policy == {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.1.0.0/16", "10.152.183.0/24", "169.254.169.254/32"]}}],
                        "ports": [{"protocol": "TCP", "port": 443}]}],
        }, name
    names = {r.name for r in dev.resources}
    assert "receipt-api-download" not in names and "layout-engine-download" not in names  # no cache, no way out


def test_models_holding_a_gpu_or_a_cache_stop_the_old_pod_before_starting_the_new(llm: Evaluation, dev: Evaluation) -> None:
    stop_first = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    for ev, name in ((llm, "llm-server"), (dev, "ocr-engine"), (dev, "layout-engine")):
        assert ev.by_name(f"{name}-deployment").inputs["spec"]["strategy"] == stop_first, name
    assert "strategy" not in dev.by_name("receipt-api-deployment").inputs["spec"]  # cloud API: surge first, no downtime


def test_the_rollout_timeout_follows_a_startup_budget_longer_than_the_placements() -> None:
    raw = stack_config("dev")
    receipt = next(m for m in raw["models"] if m["name"] == "receipt-api")
    receipt["probes"] = {"startupSeconds": 1800}
    ev = evaluate_config(raw)
    assert ev.by_name("receipt-api-deployment").timeouts == {"create": "40m", "update": "40m"}  # 30 min + 10 for the pull
    assert rollout_timeouts("gpu", 3601).create == "71m" and rollout_timeouts("gpu", 600).create == "45m"


def test_the_config_rule_knows_the_default_cache_storage_class() -> None:
    assert HOSTPATH == HOSTPATH_STORAGE_CLASS


def test_a_doubled_dollar_paren_is_a_literal_and_accepted() -> None:
    raw = with_llm_server(stack_config("dev"))
    raw["models"][-1]["args"] = ["--template", "$$(name)"]
    ev = evaluate_config(raw, secrets=CATALOG_SECRETS)
    assert container(ev, "llm-server")["args"] == ["--template", "$$(name)"]  # the kubelet turns it into `$(name)`
