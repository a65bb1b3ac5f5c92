"""GPU memory budgets and sharing modes: a profile's memory split into per-pod shares, pods kept
to GPUs whose share holds their `gpuMemory`, a catalog that cannot fit refused with one line,
MPS profiles and whole (exclusive) GPUs in the device plugin's config, as the plugin reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.kit.kube import GPU_MODEL_LABEL
from components.workloads.gpu_sharing import profile_config
from stacks.build import node_labels
from stacks.config.gpu_budget import GPU_CONTEXT_RESERVE_MIB, SHARE_LABEL, SHARING_LABEL
from stacks.load import ConfigError, validate
from tests.support.helpers import evaluate_config, stack_config
from tests.support.workloads import pod
from tools.render.evaluate import Evaluation
from tools.render.placement import placement


def rejected(raw: dict[str, Any]) -> list[str]:
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    assert seen.resources == []
    return err.value.problems


def model(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in raw["models"] if m["name"] == name)


def two_profiles(raw: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    """ws-1 gets its own profile `big`; ws-2 keeps dev's rtx-3090 (24Gi / 4 = 6Gi shares)."""
    raw["timeSlicing"]["profiles"].append({"name": "big"} | big)
    next(h for h in raw["hosts"] if h["name"] == "ws-1")["gpu"]["profile"] = "big"
    return raw


def test_a_budget_no_gpu_share_holds_is_one_line_with_the_numbers() -> None:
    raw = stack_config("llm")
    model(raw, "chat")["gpuMemory"] = "8Gi"
    assert rejected(raw) == ["hybrid-ai:models[5].gpuMemory: 'chat' needs 8Gi of GPU memory per pod but no GPU it may run on offers that "
                             "(rtx-3090: 24576 MiB / 4 = 6144 MiB per pod); lower gpuMemory, or give its profile `memory` or fewer `replicas`"]


def test_a_budget_needs_the_profile_to_declare_memory() -> None:
    raw = stack_config("llm")
    del raw["timeSlicing"]["profiles"][0]["memory"]
    ocr, layout, chat, tf = rejected(raw)  # one line per budget no GPU can be checked against
    assert ocr.startswith("hybrid-ai:models[1].gpuMemory: 'ocr-engine' needs 4Gi") and layout.startswith("hybrid-ai:models[2].gpuMemory")
    assert chat.startswith("hybrid-ai:models[5].gpuMemory: 'chat' needs 6Gi") and "rtx-3090: no `memory` declared" in chat
    assert tf.startswith("hybrid-ai:tfServing.gpuMemory: TF-Serving needs 6Gi") and "rtx-3090: no `memory` declared" in tf


def test_pods_asking_more_than_the_shares_that_hold_them_are_refused() -> None:
    # 8 shares in all fit the 6 GPU pods, but only ws-1's 2 shares of 12Gi hold a 10Gi budget.
    raw = two_profiles(stack_config("llm"), {"replicas": 2, "memory": "24Gi"})
    model(raw, "chat").update(gpuMemory="10Gi", replicas=3, maxReplicas=3)
    assert rejected(raw) == ["hybrid-ai:models[5].replicas: the pods with gpuMemory of 10240 MiB or more need 3 GPU shares (chat 3 x 10Gi) "
                             "but the GPUs whose share holds that offer 2; lower replicas or gpuMemory, or add GPUs"]


def test_a_budgeted_model_lands_only_where_its_share_fits_and_takes_its_share_of_that_gpu() -> None:
    raw = two_profiles(stack_config("llm"), {"replicas": 2, "memory": "24Gi"})
    model(raw, "chat")["gpuMemory"] = "10Gi"
    ev = evaluate_config(raw)
    spec = pod(ev, "chat")
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": GPU_MODEL_LABEL, "operator": "Exists"},
                                           {"key": SHARE_LABEL, "operator": "Gt", "values": ["10239"]}]}]
    assert "--gpu-memory-utilization=0.37" in spec["containers"][0]["args"]  # 10Gi less the 1Gi reserve, of 24Gi, rounded down
    cfg = validate(raw)
    labels = {h.name: node_labels(cfg, h) for h in cfg.hosts if h.gpu}
    # Labels a kubelet may not set on itself (NodeRestriction): no workstation can claim a bigger share.
    assert SHARE_LABEL.startswith("hybrid-ai.node-restriction.kubernetes.io/") and SHARING_LABEL.startswith("hybrid-ai.node-restriction.kubernetes.io/")
    assert (labels["ws-1"][SHARE_LABEL], labels["ws-2"][SHARE_LABEL]) == ("12288", "6144")
    where = placement(ev, cfg)
    assert "chat" in where["ws-1"] and "chat" not in where["ws-2"]  # the scheduler's reading of Gt
    assert "ocr-engine" in where["ws-1"] and "ocr-engine" in where["ws-2"]  # no budget: any GPU
    hpa = ev.by_name("chat-hpa").inputs["spec"]
    assert hpa["maxReplicas"] == 2  # only ws-1's two shares hold it


def test_whole_gpus_only_where_the_profile_gives_one_pod_per_gpu() -> None:
    raw = stack_config("llm")
    model(raw, "chat")["exclusiveGpu"] = True
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:models[5].exclusiveGpu: 'chat' asks for a whole GPU") and "replicas: 1" in problem
    raw = two_profiles(stack_config("llm"), {"replicas": 1, "memory": "24Gi"})
    model(raw, "chat")["exclusiveGpu"] = True
    ev = evaluate_config(raw)
    expressions = pod(ev, "chat")["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": SHARING_LABEL, "operator": "In", "values": ["exclusive"]} in expressions
    where = placement(ev, validate(raw))
    assert "chat" in where["ws-1"] and "chat" not in where["ws-2"]
    config = yaml.safe_load(ev.by_name("gpu-sharing-config").inputs["data"]["big"])
    assert "sharing" not in config  # whole GPUs: nothing replicated


def test_tensor_parallel_servers_need_that_many_whole_gpus_on_one_host() -> None:
    raw = two_profiles(stack_config("llm"), {"replicas": 1, "memory": "24Gi"})
    next(h for h in raw["hosts"] if h["name"] == "ws-1")["gpu"]["count"] = 2
    model(raw, "chat")["vllm"]["tensorParallelSize"] = 2
    ev = evaluate_config(raw)
    c = pod(ev, "chat")["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2" and "--tensor-parallel-size=2" in c["args"]
    assert placement(ev, validate(raw))["ws-2"].count("chat") == 0
    model(raw, "chat")["vllm"]["tensorParallelSize"] = 3  # 6 GPU slots for 6 pods' worth, but no host has 3 whole GPUs
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:models[5]: 'chat' needs 3 whole GPUs on one host"), problem


def test_mps_profiles_in_the_plugin_config_and_the_nodes_its_daemon_selects() -> None:
    raw = stack_config("llm")
    raw["timeSlicing"]["profiles"][0]["sharing"] = "mps"
    # The plugin mounts its MPS daemon's /dev/shm into the container: a model may not bring its own.
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:models[1].shmSize: on MPS GPUs the device plugin mounts its own /dev/shm"), problem
    del model(raw, "ocr-engine")["shmSize"]
    ev = evaluate_config(raw)
    config = yaml.safe_load(ev.by_name("gpu-sharing-config").inputs["data"]["rtx-3090"])
    assert config["sharing"] == {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}
    cfg = validate(raw)
    labels = node_labels(cfg, next(h for h in cfg.hosts if h.name == "ws-1"))
    assert labels["nvidia.com/mps.capable"] == "true" and labels[SHARING_LABEL] == "mps"
    assert all(v.get("emptyDir", {}).get("medium") != "Memory" for v in pod(ev, "chat")["volumes"])  # nor vLLM's default one


def test_mps_needs_two_replicas_as_the_plugin_does() -> None:
    raw = stack_config("llm")
    raw["timeSlicing"]["profiles"][0].update(sharing="mps", replicas=1)
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:timeSlicing.profiles[0]") and "2 or more" in problem


def test_a_one_replica_profile_has_no_replicated_resource() -> None:
    # The plugin refuses a replicated resource of fewer than 2 replicas (api/config/v1/replicas.go
    # at v0.18.2): one replica must mean no `sharing` section at all, for both modes.
    assert "sharing" not in yaml.safe_load(profile_config(1))
    assert "sharing" not in yaml.safe_load(profile_config(1, "mps"))
    shared = yaml.safe_load(profile_config(3))["sharing"]["timeSlicing"]
    assert shared == {"failRequestsGreaterThanOne": True, "resources": [{"name": "nvidia.com/gpu", "replicas": 3}]}


def test_without_profiles_gpus_are_whole_and_the_plugin_config_says_so() -> None:
    raw = stack_config("llm")
    del raw["timeSlicing"], raw["tfServing"]
    raw["models"] = [m for m in raw["models"] if m.get("kind") != "vllm"]
    for m in raw["models"]:
        m.pop("gpuMemory", None)  # no profile, no memory to check a budget against
        if m.get("placement") == "gpu" and m["name"] == "layout-engine":
            m["gpus"] = 0  # two GPUs, three GPU pods otherwise
            m["placement"] = "cloud"
    ev = evaluate_config(raw)
    config = yaml.safe_load(ev.by_name("gpu-sharing-config").inputs["data"]["rtx-3090"])
    assert "sharing" not in config
    cfg = validate(raw)
    assert node_labels(cfg, next(h for h in cfg.hosts if h.name == "ws-1"))[SHARING_LABEL] == "exclusive"


def test_tf_serving_keeps_to_its_budget_too(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("llm"))
    spec = pod(ev, "tf-serving")
    assert "--per_process_gpu_memory_fraction=0.20" in spec["containers"][0]["args"]  # 6Gi less the 1Gi reserve, of 24Gi
    expressions = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": SHARE_LABEL, "operator": "Gt", "values": ["6143"]} in expressions
    raw = stack_config("llm")
    raw["tfServing"]["gpuMemory"] = "7Gi"
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:tfServing.gpuMemory: TF-Serving needs 7Gi of GPU memory but no GPU it may run on offers that"), problem
    raw = stack_config("dev")  # no budgets anywhere: TF-Serving needs none
    args = pod(evaluate_config(raw), "tf-serving")["containers"][0]["args"]
    assert not any(a.startswith("--per_process_gpu_memory_fraction") for a in args)  # no budget, no flag


def _fraction(args: list[str], flag: str) -> float:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")]
    return float(value)


def test_a_full_gpu_holds_every_pods_share_and_the_cuda_context_outside_it() -> None:
    """vLLM's fraction (and TensorFlow's) counts neither the process's CUDA context nor vLLM's
    CUDA graph pool: on a GPU with all its shares taken, each pod's fraction of the GPU plus
    that reserve must fit, or the last pod to start finds less free than its fraction."""
    raw = stack_config("llm")
    model(raw, "chat")["maxReplicas"] = 3
    ev = evaluate_config(raw)
    memory, replicas = 24576, 4  # the llm stack's rtx-3090 profile
    for name, flag in (("chat", "--gpu-memory-utilization"), ("tf-serving", "--per_process_gpu_memory_fraction")):
        fraction = _fraction(pod(ev, name)["containers"][0]["args"], flag)
        assert replicas * (fraction * memory + GPU_CONTEXT_RESERVE_MIB) <= memory, (name, fraction)
        assert fraction * memory + GPU_CONTEXT_RESERVE_MIB <= 6144, (name, fraction)  # within its own budget
    assert GPU_CONTEXT_RESERVE_MIB >= 512


def test_a_budget_no_larger_than_the_cuda_context_is_one_line() -> None:
    raw = stack_config("llm")
    model(raw, "chat")["gpuMemory"] = "1Gi"
    assert rejected(raw) == ["hybrid-ai:models[5].gpuMemory: 'chat' gets 1Gi of GPU memory per pod, which leaves the server nothing beside "
                             "the CUDA context (1024 MiB reserved, docs/models.md); raise gpuMemory"]


def test_a_gpu_model_without_a_budget_beside_budgeted_ones_is_one_line() -> None:
    """Unbudgeted, it could take the memory of the budgeted pods on its GPU (the failure budgets
    are for): wherever a budgeted pod may share a GPU, every GPU pod that may land there needs one."""
    raw = stack_config("llm")
    del model(raw, "ocr-engine")["gpuMemory"]
    assert rejected(raw) == ["hybrid-ai:models[1].gpuMemory: 'ocr-engine' may share a GPU of profile rtx-3090 with pods that keep to "
                             "budgets (chat, layout-engine, tf-serving), and without one of its own it could take their memory; "
                             "set gpuMemory (at most the share, 6144 MiB)"]
    raw = stack_config("llm")
    del raw["tfServing"]["gpuMemory"]
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:tfServing.gpuMemory: 'tf-serving' may share a GPU of profile rtx-3090"), problem


def whole_gpu_host(raw: dict[str, Any]) -> dict[str, Any]:
    """ws-1 gives one whole GPU (a profile of one replica) and chat asks for one."""
    raw = two_profiles(raw, {"replicas": 1, "memory": "24Gi"})
    model(raw, "chat")["exclusiveGpu"] = True
    return raw


def test_shared_models_keep_off_the_whole_gpus_a_model_asks_for() -> None:
    raw = whole_gpu_host(stack_config("llm"))
    ev = evaluate_config(raw)
    for name in ("ocr-engine", "layout-engine", "tf-serving"):
        expressions = pod(ev, name)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
        assert {"key": SHARING_LABEL, "operator": "NotIn", "values": ["exclusive"]} in expressions, name
    where = placement(ev, validate(raw))
    assert where["ws-1"].count("chat") == 1 and not set(where["ws-1"]) & {"ocr-engine", "layout-engine", "tf-serving"}, where
    # Without a model that asks for a whole GPU, nothing is kept: the one-pod GPU serves any model.
    raw = two_profiles(stack_config("llm"), {"replicas": 1, "memory": "24Gi"})
    expressions = pod(evaluate_config(raw), "ocr-engine")["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert all(e["key"] != SHARING_LABEL for e in expressions), expressions


def test_whole_gpu_asks_the_exclusive_gpus_cannot_all_hold_are_one_line() -> None:
    raw = whole_gpu_host(stack_config("llm"))
    model(raw, "chat").update(replicas=2, maxReplicas=2)  # two whole GPUs asked, ws-1 has one
    assert rejected(raw) == ["hybrid-ai:models[5].replicas: the models asking for whole GPUs need 2 GPUs (chat 2 x 1) but the exclusive "
                             "GPU hosts 'chat' may use (ws-1: 1) are sure to hold them, whatever the scheduler places first, only up to 1; "
                             "lower replicas (or maxReplicas), or add GPUs to profiles with `replicas: 1`"]
    raw = whole_gpu_host(stack_config("llm"))  # chat's autoscaler may take both of ws-1's GPUs: none is sure to be left for coder
    next(h for h in raw["hosts"] if h["name"] == "ws-1")["gpu"]["count"] = 2
    raw["models"].append({k: v for k, v in model(raw, "chat").items() if k not in ("publicPath", "maxReplicas")} | {"name": "coder"})
    (problem,) = rejected(raw)
    assert problem.startswith("hybrid-ai:models[5].replicas: the models asking for whole GPUs need 3 GPUs (chat 2 x 1, coder 1 x 1)"), problem
    raw = two_profiles(stack_config("llm"), {"replicas": 1, "memory": "48Gi"})  # two whole-GPU models of 2 GPUs on a host of 3
    next(h for h in raw["hosts"] if h["name"] == "ws-1")["gpu"]["count"] = 3
    model(raw, "chat")["vllm"]["tensorParallelSize"] = 2
    raw["models"].append({k: v for k, v in model(raw, "chat").items() if k not in ("publicPath", "maxReplicas")} | {"name": "coder"})
    (problem,) = rejected(raw)  # 4 GPUs of 3: the second pod finds one free whatever happens
    assert problem.startswith("hybrid-ai:models[5].replicas: the models asking for whole GPUs need 4 GPUs (chat 1 x 2, coder 1 x 2)"), problem


def test_a_shared_model_with_only_whole_gpus_left_is_one_line() -> None:
    raw = whole_gpu_host(stack_config("llm"))
    raw["timeSlicing"]["defaultProfile"] = "big"  # ws-2 too: every GPU is whole, and chat asks for one
    raw["timeSlicing"]["profiles"] = [p for p in raw["timeSlicing"]["profiles"] if p["name"] == "big"]
    next(h for h in raw["hosts"] if h["name"] == "ws-2")["gpu"]["count"] = 3  # GPUs enough for every GPU pod
    problems = rejected(raw)
    assert problems[0] == ("hybrid-ai:models[1].exclusiveGpu: 'ocr-engine' shares a GPU, but every GPU host that fits it gives whole GPUs, "
                           "kept for the models that ask for them (chat); set exclusiveGpu: true, or add a profile with `replicas` above 1"), problems
