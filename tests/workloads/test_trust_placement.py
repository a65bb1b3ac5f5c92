"""Trust tiers in placement: a pod whose service account can read Secrets outside its namespace,
create pods or rewrite webhooks and CRDs lands only on cloud nodes, even when a workstation's
kubelet labels its own Node as it likes; and every label the program places by is one no kubelet
can set on itself.

The workstation is modelled as root on it would make it: NodeRestriction (Kubernetes 1.32) lets
its kubelet add, change or remove any label outside `node-restriction.kubernetes.io` (and its
subdomains) and the kubernetes.io/k8s.io namespaces other than the kubelet's own set; it may not
change those, nor its taints, and the Node authorizer gives it no `delete` on its Node (so it
cannot re-register without them). Placement must hold by labels alone: a kubelet-settable label
matches at will, a restricted one only as the program set it; taints are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from stacks.build import node_labels
from stacks.load import validate
from tests.support.admission import Request, admits, bound_policies, node
from tests.support.admission import pod as pod_object
from tests.support.chart_workloads import ADDONS, NODE_STATUS, POD_STATUS, WORKLOADS, at
from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.placement import fits
from tools.render.write import reveal

STACKS = ("dev", "ha", "prod", "netmaker")
HELM = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
POD_KINDS = {"Deployment": ("template", "spec"), "DaemonSet": ("template", "spec"), "StatefulSet": ("template", "spec"),
             "Job": ("template", "spec"), "CronJob": ("jobTemplate", "spec", "template", "spec")}
# k8s.io/kubelet v0.32.13 pkg/apis/well_known_labels.go: the kubernetes.io labels a kubelet may set.
KUBELET_LABELS = {"kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
                  "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
                  "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
                  "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch"}
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _within(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def kubelet_may_set(key: str) -> bool:
    """NodeRestriction's rule at 1.32 (plugin/pkg/admission/noderestriction/admission.go
    getForbiddenLabels, with kubelet's IsKubeletLabel)."""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if _within(namespace, "node-restriction.kubernetes.io"):
        return False
    if _within(namespace, "kubernetes.io") or _within(namespace, "k8s.io"):
        return key in KUBELET_LABELS or any(_within(namespace, ns) for ns in KUBELET_NAMESPACES)
    return True


def _workstation_accounts(power: str) -> list[str]:
    """Service accounts whose pods run on workstations and hold `power` (their tokens are there)."""
    return [f"system:serviceaccount:kube-system:{a.deployment}" for a in ADDONS if a.belongs != "cloud" and power in a.writes]


def hostile_may_set(ev: Evaluation) -> Callable[[str], bool]:
    """Root on a workstation: its kubelet's labels, and through the status writes of every
    service account whose pods run there, any label the rendered admission policies let it."""
    policies = bound_policies(ev)
    groups = ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")

    def may_set(key: str) -> bool:
        requests = [Request(sa, groups, "UPDATE", "nodes", "status", node("ws-1", {key: "x"}), node("ws-1", {}))
                    for sa in _workstation_accounts(NODE_STATUS)]
        return kubelet_may_set(key) or any(all(admits(p, r) for p in policies) for r in requests)
    return may_set


def _matchable(expr: Mapping[str, Any], program: Mapping[str, str], may_set: Callable[[str], bool] = kubelet_may_set) -> bool:
    """Whether a hostile workstation can make its node match one node-selector requirement."""
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if may_set(key):  # set, changed or removed at will
        return True
    outcome = {"In": program.get(key) in values, "NotIn": program.get(key) not in values,
               "Exists": key in program, "DoesNotExist": key not in program}
    if op not in outcome:
        raise ValueError(f"operator {op} is not modelled")
    return outcome[op]


def hostile_can_land(pod: Mapping[str, Any], program: Mapping[str, str], may_set: Callable[[str], bool] = kubelet_may_set) -> bool:
    selector = pod.get("nodeSelector") or {}
    if not all(_matchable({"key": k, "operator": "In", "values": [v]}, program, may_set) for k, v in selector.items()):
        return False
    required = ((pod.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(all(_matchable(e, program, may_set) for e in t.get("matchExpressions") or []) for t in terms)


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[str, Evaluation]:
    return request.param, evaluate_config(stack_config(request.param))


def _hosts(name: str) -> Iterator[tuple[Any, dict[str, str], list[dict[str, str]], str]]:
    """(host, the labels the program gives it and its kubelet's own, its taints, its site's kind) per cluster node."""
    cfg = validate(stack_config(name))
    for h in (h for h in cfg.hosts if h.in_cluster):
        labels = {"kubernetes.io/os": "linux", "kubernetes.io/hostname": h.name} | node_labels(cfg, h)
        yield h, labels, [{"key": t.key, "value": t.value, "effect": t.effect} for t in h.taints], cfg.site(h.site).kind


def _chart_values(ev: Evaluation) -> dict[str, Mapping[str, Any]]:
    return {r.inputs["chart"]: reveal(r.inputs.get("values") or {}) for r in ev.resources if r.type in HELM}


def _program_pods(ev: Evaluation) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(resource name, namespace, pod spec) of every workload the program renders itself."""
    for r in ev.resources:
        kind = r.type.rsplit(":", 1)[-1].removesuffix("Patch")
        if r.type.startswith("kubernetes:") and kind in POD_KINDS:
            inputs = reveal(r.inputs)
            spec = inputs.get("spec") or {}
            for key in POD_KINDS[kind]:
                spec = spec.get(key) or {}
            yield r.name, str((inputs.get("metadata") or {}).get("namespace", "")), spec


def _patched_name(ev: Evaluation, resource: str) -> str:
    return str(reveal(ev.by_name(resource).inputs)["metadata"]["name"])


def _program_powers(ev: Evaluation, namespace: str, pod: Mapping[str, Any]) -> set[str]:
    """What the pod's service account may do by the RBAC the program renders (a pod with no token
    can do nothing; a binding to a role the render does not hold counts as every power)."""
    if pod.get("automountServiceAccountToken") is False:
        return set()
    account = pod.get("serviceAccountName") or "default"
    roles = {(r.type.rsplit(":", 1)[-1], reveal(r.inputs)["metadata"]["name"]): reveal(r.inputs).get("rules") or []
             for r in ev.resources if r.type.endswith((":Role", ":ClusterRole"))}
    powers: set[str] = set()
    for b in (reveal(r.inputs) for r in ev.resources if r.type.endswith(("RoleBinding", ":ClusterRoleBinding"))):
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace", namespace) == namespace
                   for s in b.get("subjects") or []):
            continue
        everywhere = b.get("kind", "ClusterRoleBinding") == "ClusterRoleBinding" or b["metadata"].get("namespace") != namespace
        rules = roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]))
        if rules is None:
            powers.add(f"unknown role {b['roleRef']['name']}")
            continue
        for rule in rules:
            resources, verbs = set(rule.get("resources") or []), set(rule.get("verbs") or [])
            if everywhere and resources & {"secrets", "*"} and verbs & {"get", "list", "watch", "*"}:
                powers.add("reads Secrets in every namespace")
            if resources & {"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "*"} and verbs & {"create", "*"}:
                powers.add("creates pods")
    return powers


def test_a_pod_that_can_read_secrets_elsewhere_or_create_pods_lands_only_on_trusted_nodes(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    hosts = list(_hosts(name))
    values = _chart_values(ev)
    may_set = hostile_may_set(ev)
    seen = 0
    for w in (w for w in WORKLOADS if w.chart in values):
        pod, powers = w.pod_spec(values[w.chart]), w.powers_with(values[w.chart])
        assert not powers or w.belongs == "cloud", f"{w.chart} {w.pod}: {sorted(powers)} but meant for {w.belongs}"
        for h, labels, taints, kind in hosts:
            if w.belongs == "cloud" and kind != "cloud":
                assert not hostile_can_land(pod, labels, may_set), f"{name}: {w.chart} {w.pod} ({', '.join(sorted(powers)) or 'cloud only'}) can land on {h.name}: {pod}"
            if (w.belongs == "gpu" and h.gpu is not None) or w.belongs == "every node":
                assert fits(pod, labels, taints), f"{name}: {w.chart} {w.pod} does not fit {h.name}, where it belongs"
        if w.belongs == "cloud":
            assert any(fits(pod, labels, taints) for _, labels, taints, kind in hosts if kind == "cloud"), f"{w.chart} {w.pod} fits no cloud node"
        seen += 1
    assert seen >= 6  # the charts of the stack were found in the render
    for addon in (a for a in ADDONS if a.powers or a.belongs == "cloud"):
        assert addon.belongs == "cloud", addon.deployment
        spec = next((p for r, ns, p in _program_pods(ev) if ns == "kube-system" and _patched_name(ev, r) == addon.deployment), {})
        for h, labels, _, kind in hosts:
            assert kind == "cloud" or not hostile_can_land(spec, labels, may_set), f"{name}: MicroK8s' {addon.deployment} ({sorted(addon.powers)}) can land on {h.name}"
    for resource, namespace, spec in _program_pods(ev):
        if rendered := _program_powers(ev, namespace, spec):
            for h, labels, _, kind in hosts:
                assert kind == "cloud" or not hostile_can_land(spec, labels, may_set), f"{name}: {resource} ({sorted(rendered)}) can land on {h.name}"


def test_no_workstation_account_relabels_a_pod_through_its_status(stack: tuple[str, Evaluation]) -> None:
    """pods/status keeps the labels sent (k8s 1.32 pod status strategy): a GPU pod relabelled
    app.kubernetes.io/name=redis would join redis' Service and its NetworkPolicy identity."""
    name, ev = stack
    policies = bound_policies(ev)
    accounts = _workstation_accounts(POD_STATUS)
    assert accounts  # calico-node
    for sa in accounts:
        request = Request(sa, ("system:serviceaccounts",), "UPDATE", "pods", "status",
                          pod_object("ocr", {"app.kubernetes.io/name": "redis"}), pod_object("ocr", {"app.kubernetes.io/name": "ocr-engine"}))
        assert not all(admits(p, request) for p in policies), f"{name}: {sa} relabels pods through pods/status"


def test_the_hostile_workstation_sets_protected_labels_only_without_the_policy() -> None:
    ev = evaluate_config(stack_config("dev"))
    assert not hostile_may_set(ev)("hybrid-ai.node-restriction.kubernetes.io/location")
    assert hostile_may_set(ev)("hybrid-ai/location")
    assert hostile_can_land({"nodeSelector": {"hybrid-ai.node-restriction.kubernetes.io/location": "cloud"}},
                            {"hybrid-ai.node-restriction.kubernetes.io/location": "on-prem"}, lambda key: True)


def _placement_keys(pod: Mapping[str, Any]) -> set[str]:
    affinity = (pod.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    terms += [p["preference"] for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    keys = set(pod.get("nodeSelector") or {}) | {e["key"] for t in terms for e in t.get("matchExpressions") or []}
    return keys | {c["topologyKey"] for c in pod.get("topologySpreadConstraints") or []} - {"kubernetes.io/hostname"}


def test_every_label_the_program_places_by_is_one_no_kubelet_can_set_on_itself(stack: tuple[str, Evaluation]) -> None:
    name, ev = stack
    values = _chart_values(ev)
    used = {key: resource for resource, _, pod in _program_pods(ev) for key in _placement_keys(pod)}
    used |= {key: f"{w.chart} {w.pod}" for w in WORKLOADS if w.chart in values for key in _placement_keys(at(values[w.chart], w.path))}
    assert used, "no placement found in the render"
    settable = {key: where for key, where in used.items() if kubelet_may_set(key)}
    assert not settable, f"{name}: placed by labels a kubelet can set on itself: {settable}"
    labelled = set().union(*(labels for _, labels, _, _ in _hosts(name)))
    assert set(used) <= labelled, f"{name}: placed by labels no node carries: {set(used) - labelled}"


def test_kubelet_label_rule_is_noderestrictions() -> None:
    """The rule the two tests above rely on, on the cases that matter."""
    assert not kubelet_may_set("hybrid-ai.node-restriction.kubernetes.io/location")
    assert not kubelet_may_set("node-restriction.kubernetes.io/location")
    assert not kubelet_may_set("hybrid-ai.example.kubernetes.io/location")  # an unknown kubernetes.io label
    assert kubelet_may_set("hybrid-ai/location") and kubelet_may_set("nvidia.com/gpu.present")
    assert kubelet_may_set("topology.kubernetes.io/zone") and kubelet_may_set("node.kubernetes.io/microk8s-worker")
    assert hostile_can_land({"nodeSelector": {"hybrid-ai/location": "cloud"}}, {})
    assert not hostile_can_land({"nodeSelector": {"node-restriction.kubernetes.io/x": "cloud"}}, {"node-restriction.kubernetes.io/x": "on-prem"})


def test_grafana_reads_dashboards_from_its_own_namespace_only() -> None:
    ev = evaluate_config(stack_config("dev"))
    release = next(r for r in ev.resources if r.type in HELM and r.inputs["chart"] == "kube-prometheus-stack")
    grafana = reveal(release.inputs["values"])["grafana"]
    assert grafana["sidecar"]["dashboards"]["searchNamespace"] == release.inputs["namespace"] == "monitoring"
    assert grafana["rbac"] == {"namespaced": True}  # a Role there, no ClusterRole (nor extra cluster rules)
    grafana_workload = next(w for w in WORKLOADS if w.pod == "grafana")
    assert grafana_workload.powers_with(reveal(release.inputs["values"])) == frozenset()


def test_what_is_placed_by_the_labels_waits_for_them() -> None:
    """An existing stack is relabelled in the same `up` that moves the selectors: what goes on the
    cloud or GPU nodes starts only once those nodes carry the new labels."""
    ev = evaluate_config(stack_config("dev"))
    labels = {ev.by_name(f"cluster-{n}-labels").urn for n in ("receipt", "interface")}
    for name in ("ingress-traefik", "ingress-cert-manager", "monitoring-stack", "receipt-api-deployment"):
        closure = deps_closure(ev, ev.by_name(name).urn)
        assert ev.by_name("cluster-receipt-labels").urn in closure, name
    assert labels <= deps_closure(ev, ev.by_name("receipt-api-deployment").urn)
    assert ev.by_name("cluster-ws-1-labels").urn in deps_closure(ev, ev.by_name("ocr-engine-deployment").urn)
