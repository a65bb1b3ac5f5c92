"""Where each model can run, read from the plan the way the scheduler would read it.

The inputs are the rendered pod specs (nodeSelector, required node affinity, tolerations)
and the labels and taints the program sets on each node (`stacks.build.node_labels`), so
the picture follows any change to either; nothing here decides placement on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stacks.build import node_labels
from stacks.config import StackConfig
from tools.render.evaluate import Evaluation, Registration
from tools.render.write import reveal

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
TF_SERVING = "hybridai:k8s:TfServing"
MODEL_SERVICE = "hybridai:k8s:ModelService"


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op in ("Gt", "Lt"):
        # As the scheduler reads them: one integer value; a missing or non-integer label fails.
        try:
            have = int(labels[key])
        except (KeyError, ValueError):
            return False
        return have > int(values[0]) if op == "Gt" else have < int(values[0])
    raise ValueError(f"node affinity operator {op!r} is not understood by the topology picture")


def _tolerated(taint: Mapping[str, str], tolerations: list[Mapping[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def fits(pod: Mapping[str, Any], labels: Mapping[str, str], taints: Sequence[Mapping[str, str]]) -> bool:
    """Whether the scheduler may place `pod` on a node with these labels and taints."""
    if any(labels.get(k) != v for k, v in (pod.get("nodeSelector") or {}).items()):
        return False
    required = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(all(_expression(e, labels) for e in term.get("matchExpressions") or []) for term in terms):
        return False
    hard = [t for t in taints if t["effect"] in ("NoSchedule", "NoExecute")]
    return all(_tolerated(t, list(pod.get("tolerations") or [])) for t in hard)


def _deployment_of(ev: Evaluation, component: Registration) -> Registration | None:
    """The Deployment under `component`, at any depth (TF-Serving runs one through a ModelService)."""
    parents = {r.urn: r.parent for r in ev.resources}

    def under(urn: str | None) -> bool:
        while urn is not None:
            if urn == component.urn:
                return True
            urn = parents.get(urn)
        return False

    return next((r for r in ev.resources if r.type == DEPLOYMENT and under(r.parent)), None)


def _pod_specs(ev: Evaluation, cfg: StackConfig) -> dict[str, Mapping[str, Any]]:
    """Model name -> the pod spec that serves it (tf-models are served by TF-Serving)."""
    components = {r.name: r for r in ev.resources if r.type == MODEL_SERVICE}
    tf = next((r for r in ev.resources if r.type == TF_SERVING), None)
    specs: dict[str, Mapping[str, Any]] = {}
    for m in cfg.models:
        component = tf if m.kind == "tf-model" else components.get(m.name)
        deployment = _deployment_of(ev, component) if component is not None else None
        if deployment is not None:
            specs[m.name] = reveal(deployment.inputs)["spec"]["template"]["spec"]
    return specs


def placement(ev: Evaluation, cfg: StackConfig) -> dict[str, list[str]]:
    """Host name -> the models whose pods may land on it (cluster nodes only)."""
    specs = _pod_specs(ev, cfg)
    out: dict[str, list[str]] = {}
    for h in cfg.hosts:
        if not h.in_cluster:
            out[h.name] = []
            continue
        labels = node_labels(cfg, h)
        taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in h.taints]
        out[h.name] = sorted(name for name, pod in specs.items() if fits(pod, labels, taints))
    return out
