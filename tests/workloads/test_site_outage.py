"""An on-prem site going offline: every workload that may run several pods spreads them over
hosts and sites and has a disruption budget, the cloud-side services (receipt API, redis,
Traefik, monitoring) can only run at cloud sites, Traefik bounds how long a request to a lost
backend waits, and nothing overrides the default eviction of pods from an unreachable node
(docs/operations.md, "When an on-prem site goes offline")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from components.kit.kube import SITE_LABEL
from stacks.build import node_labels
from stacks.config import Role, StackConfig
from stacks.load import validate
from tests.support.helpers import PROJECT, evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.placement import fits
from tools.render.write import reveal

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HOST = "kubernetes.io/hostname"
# What the documented timeline promises a client of the public API.
DIAL_TIMEOUT_MAX_S = 5
RESPONSE_HEADER_TIMEOUT_MAX_S = 60


@pytest.fixture(scope="module")
def ha() -> Evaluation:
    return evaluate_config(stack_config("ha"))


def _deployments(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """Deployment name -> its spec."""
    return {d.inputs["metadata"]["name"]: reveal(d.inputs)["spec"] for d in ev.of_type(DEPLOYMENT)}


def _hpas(ev: Evaluation, name: str) -> list[Mapping[str, Any]]:
    return [h.inputs["spec"] for h in ev.of_type(HPA) if h.inputs["spec"]["scaleTargetRef"]["name"] == name]


def _fewest_pods(ev: Evaluation, name: str, spec: Mapping[str, Any]) -> int:
    """Its replicas, or its HPA's floor when an HPA scales it (it then carries no replicas)."""
    return int(spec["replicas"]) if "replicas" in spec else int(_hpas(ev, name)[0]["minReplicas"])


def _most_pods(ev: Evaluation, name: str, spec: Mapping[str, Any]) -> int:
    return max([_fewest_pods(ev, name, spec), *(int(h["maxReplicas"]) for h in _hpas(ev, name))])


def _budget(ev: Evaluation, selector: Mapping[str, str]) -> dict[str, Any]:
    budgets = [p.inputs["spec"] for p in ev.of_type(PDB) if p.inputs["spec"]["selector"] == {"matchLabels": dict(selector)}]
    assert len(budgets) == 1, f"{selector}: {len(budgets)} PodDisruptionBudgets"
    return dict(budgets[0])


def _autoscaled_from_one(raw: dict[str, Any]) -> dict[str, Any]:
    """The receipt API at one replica: still several pods at peak (its HPA's ceiling is 3)."""
    next(m for m in raw["models"] if m["name"] == "receipt-api")["replicas"] = 1
    return raw


@pytest.mark.parametrize("case", ["ha", "dev", "autoscaled from one"])
def test_every_multi_replica_workload_spreads_over_hosts_and_sites_and_has_a_budget(case: str, ha: Evaluation) -> None:
    ev = {"ha": lambda: ha, "dev": lambda: evaluate_config(stack_config("dev")),
          "autoscaled from one": lambda: evaluate_config(_autoscaled_from_one(stack_config("ha")))}[case]()
    multi, single = [], []
    for name, spec in _deployments(ev).items():
        selector = spec["selector"]["matchLabels"]
        constraints = {c["topologyKey"]: c for c in spec["template"]["spec"]["topologySpreadConstraints"]}
        budget = _budget(ev, selector)
        # A pod that is not Ready may always be evicted, even with the budget spent by pods of a lost site.
        assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name
        if _most_pods(ev, name, spec) > 1:
            multi.append(name)
            assert set(constraints) == {HOST, SITE_LABEL}, name
            assert budget.get("minAvailable") == 1 if _fewest_pods(ev, name, spec) > 1 else budget.get("maxUnavailable") == 1, name
        else:
            single.append(name)
            assert set(constraints) == {HOST}, f"{name}: a single-replica template changed"
            assert budget.get("maxUnavailable") == 1, name
        for c in constraints.values():
            # A preference: a site that is offline (or full) never leaves a replacement Pending.
            assert (c["maxSkew"], c["whenUnsatisfiable"], c["labelSelector"]) == (1, "ScheduleAnyway", {"matchLabels": selector}), name
    assert "receipt-api" in multi and {"ocr-engine", "tf-serving"} <= set(single)  # both kinds were seen


def test_the_site_label_is_the_one_every_node_carries_and_its_zone() -> None:
    cfg = validate(stack_config("ha"))
    sites = {"receipt": "cloud", "cp-2": "cloud", "cp-3": "cloud", "interface": "cloud", "ws-1": "office", "ws-2": "office"}
    assert {h.name: node_labels(cfg, h)[SITE_LABEL] for h in cfg.hosts if h.in_cluster} == sites
    # The node-lifecycle controller's zone (component-helpers GetZoneKey): per site, so an office
    # that holds most of the nodes is judged on its own and its pods are evicted (the documented timeline, step 3).
    assert {h.name: node_labels(cfg, h)["topology.kubernetes.io/zone"] for h in cfg.hosts if h.in_cluster} == sites


def _zone_state(ready: int, not_ready: int) -> str:
    """ComputeZoneState at v1.32.13 (pkg/controller/nodelifecycle), the default 0.55 threshold."""
    if ready == 0 and not_ready > 0:
        return "full"
    return "partial" if not_ready > 2 and not_ready / (ready + not_ready) >= 0.55 else "normal"


def test_an_office_holding_most_nodes_is_evicted_only_because_it_is_a_zone_of_its_own() -> None:
    # Four cloud nodes and six workstations, the office down: one zone for all would be a
    # partial disruption (eviction rate 0 below 51 nodes); per site, the office is fully down
    # while the cloud is normal, and the office's zone is evicted at the normal rate.
    assert _zone_state(ready=4, not_ready=6) == "partial"
    assert (_zone_state(ready=0, not_ready=6), _zone_state(ready=4, not_ready=0)) == ("full", "normal")
    raw = stack_config("ha")
    office = next(h for h in raw["hosts"] if h["name"] == "ws-1")
    raw["hosts"] += [{**office, "name": f"ws-{i}", "vpnAddress": f"100.64.1.{i}",
                      "existing": {"address": f"198.51.100.{20 + i}"}} for i in range(3, 7)]
    cfg = validate(raw)
    zones = {h.name: node_labels(cfg, h).get("topology.kubernetes.io/zone", "") for h in cfg.hosts if h.in_cluster}
    assert sorted(zones.values()).count("office") == 6 and sorted(zones.values()).count("cloud") == 4


def test_traefik_has_no_budget_and_the_charts_we_install_run_no_other_replicated_pod(ha: Evaluation) -> None:
    assert len(validate(stack_config("ha")).hosts_with(Role.INGRESS)) == 2  # so Traefik runs two pods
    values = ha.by_name("ingress-traefik").inputs["values"]
    # A DaemonSet: one pod per ingress node, placed by the DaemonSet controller, not spread.
    # No budget: drains skip its pods, and the disruption controller cannot scale a DaemonSet
    # (a maxUnavailable budget on it allows 0 disruptions and logs an error on every sync).
    assert values["deployment"]["kind"] == "DaemonSet"
    assert not values.get("podDisruptionBudget", {}).get("enabled", False)
    # cert-manager (replicaCount 1) and kube-prometheus-stack (Prometheus, Alertmanager: replicas
    # 1) keep their charts' single replica: nothing we pass (pinned or computed) raises it.
    for release in ("ingress-cert-manager", "monitoring-stack"):
        counts = list(_replica_counts(reveal(ha.by_name(release).inputs)["values"]))
        assert all(n <= 1 for n in counts), (release, counts)


def _replica_counts(values: Any) -> Iterator[int]:
    """Every `replicas` / `replicaCount` value in a chart's values, at any depth."""
    if isinstance(values, Mapping):
        for k, v in values.items():
            if k in ("replicas", "replicaCount"):
                yield int(v)
            yield from _replica_counts(v)
    elif isinstance(values, list):
        for v in values:
            yield from _replica_counts(v)


def _eligible(cfg: StackConfig, pod: Mapping[str, Any]) -> set[str]:
    """The cluster hosts the scheduler may place `pod` on (its nodeSelector, affinity, tolerations)."""
    return {h.name for h in cfg.hosts if h.in_cluster and fits(pod, node_labels(cfg, h),
                                                               [{"key": t.key, "value": t.value, "effect": t.effect} for t in h.taints])}


def test_cloud_side_services_never_land_on_on_prem_nodes(ha: Evaluation) -> None:
    cfg = validate(stack_config("ha"))
    cloud = {h.name for h in cfg.hosts if h.in_cluster and cfg.site(h.site).kind == "cloud"}
    deployments = _deployments(ha)
    values = ha.by_name("ingress-traefik").inputs["values"]
    monitoring = reveal(ha.by_name("monitoring-stack").inputs)["values"]
    pods: dict[str, Mapping[str, Any]] = {
        "receipt-api": deployments["receipt-api"]["template"]["spec"],
        "redis": deployments["redis"]["template"]["spec"],
        "traefik": {"nodeSelector": values["nodeSelector"], "tolerations": values.get("tolerations") or []},
        "prometheus": {"nodeSelector": monitoring["prometheus"]["prometheusSpec"]["nodeSelector"]},
        "alertmanager": {"nodeSelector": monitoring["alertmanager"]["alertmanagerSpec"]["nodeSelector"]},
        "grafana": {"nodeSelector": monitoring["grafana"]["nodeSelector"]},
    }
    for name, pod in pods.items():
        where = _eligible(cfg, pod)
        assert where and where <= cloud, f"{name} may run on {sorted(where - cloud)}"


def test_traefik_bounds_the_wait_for_a_lost_backend(ha: Evaluation) -> None:
    args = ha.by_name("ingress-traefik").inputs["values"]["additionalArguments"]
    # The option names as Traefik's reference spells them (configuration-options.md).
    timeouts = dict(a.removeprefix("--serverstransport.forwardingtimeouts.").split("=") for a in args
                    if a.startswith("--serverstransport.forwardingtimeouts."))
    seconds = {k: int(v.removesuffix("s")) for k, v in timeouts.items()}
    # Traefik's defaults (v3.7): a 30 s dial and no bound on the response headers.
    assert 0 < seconds["dialtimeout"] <= DIAL_TIMEOUT_MAX_S
    assert 0 < seconds["responseheadertimeout"] <= RESPONSE_HEADER_TIMEOUT_MAX_S
    assert set(seconds) == {"dialtimeout", "responseheadertimeout"}  # idleconntimeout keeps its 90 s


def test_pods_keep_the_default_eviction_from_an_unreachable_node(ha: Evaluation) -> None:
    # DefaultTolerationSeconds adds `node.kubernetes.io/unreachable` (and not-ready) for 300 s
    # only to pods that do not tolerate the taint already: a toleration of ours would change
    # the documented timeline.
    for name, spec in _deployments(ha).items():
        keys = {t.get("key") for t in spec["template"]["spec"].get("tolerations") or []}
        assert not keys & {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready", None}, name


def test_a_single_site_stack_still_schedules_every_replica() -> None:
    raw = stack_config("ha")
    raw["sites"] = [s for s in raw["sites"] if s["kind"] == "cloud"]
    raw["hosts"] = [h for h in raw["hosts"] if h["site"] == "cloud"]
    raw["models"] = [m | {"talksTo": ["redis"], "replicas": 6} for m in raw["models"] if m["name"] == "receipt-api"]
    raw.pop("timeSlicing")
    cfg = validate(raw)
    ev = evaluate_config(raw)
    pod = _deployments(ev)["receipt-api"]["template"]["spec"]
    eligible = _eligible(cfg, pod)
    assert len(eligible) == 4  # the control planes take pods too
    sites = {node_labels(cfg, h)[SITE_LABEL] for h in cfg.hosts if h.name in eligible}
    assert sites == {"cloud"}  # one domain: the site constraint changes nothing here
    constraints = pod["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {HOST, SITE_LABEL}
    # ScheduleAnyway only scores nodes: the filter never rejects one, so 6 replicas on 4 nodes
    # of one site all schedule.
    assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in constraints)


def test_the_documented_timeline_says_what_is_configured(ha: Evaluation) -> None:
    doc = (PROJECT / "docs" / "operations.md").read_text()
    section = " ".join(doc.split("### When an on-prem site goes offline\n", 1)[1].split("\n## ", 1)[0].split())
    args = ha.by_name("ingress-traefik").inputs["values"]["additionalArguments"]
    dial, headers = (a.rsplit("=", 1)[1].removesuffix("s") for a in sorted(args))
    assert f"after {dial} s (dial)" in section and f"at most {headers} s without response headers" in section
    # Upstream defaults the timeline rests on (docs/upstream.md): the 50 s grace period, the
    # 300 s unreachable toleration, Traefik's 503 for a Service with no Ready endpoint and 504
    # on a forwarding timeout, and our alerts' names.
    for words in ("~50 s", "300 s", "`503 Service Unavailable`", "`504 Gateway Timeout`", "MeshPeerNoHandshake", "NodeNotReady"):
        assert words in section, words
    alerts = (PROJECT / "charts" / "monitoring" / "alerts.yaml").read_text()
    assert "alert: MeshPeerNoHandshake" in alerts and "alert: NodeNotReady" in alerts


def test_cluster_dns_stays_at_cloud_sites_with_two_replicas_and_a_budget(ha: Evaluation) -> None:
    cfg = validate(stack_config("ha"))
    cloud = {h.name for h in cfg.hosts if h.in_cluster and cfg.site(h.site).kind == "cloud"}
    patch = ha.by_name("cluster-dns-coredns")
    assert patch.type == "kubernetes:apps/v1:DeploymentPatch"  # server-side apply of our fields only
    inputs = reveal(patch.inputs)
    # The dns addon's Deployment (microk8s-core-addons addons/dns/coredns.yaml).
    assert (inputs["metadata"]["name"], inputs["metadata"]["namespace"]) == ("coredns", "kube-system")
    assert inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}
    assert inputs["spec"]["replicas"] == 2
    pod = inputs["spec"]["template"]["spec"]
    where = _eligible(cfg, pod)
    assert where and where <= cloud, sorted(where - cloud)
    selector = {"k8s-app": "kube-dns"}
    assert {(c["topologyKey"], c["whenUnsatisfiable"]) for c in pod["topologySpreadConstraints"]} == {
        (HOST, "ScheduleAnyway"), (SITE_LABEL, "ScheduleAnyway")}
    assert all(c["labelSelector"] == {"matchLabels": selector} for c in pod["topologySpreadConstraints"])
    budget = _budget(ha, selector)
    assert (budget["maxUnavailable"], budget["unhealthyPodEvictionPolicy"]) == (1, "AlwaysAllow")
    assert "minAvailable" not in budget  # a re-enabled addon's single pod stays evictable
    # Applied once the seed, which enables the addon, is Ready, and the cloud nodes carry their
    # labels (else the new pods would wait Pending for them).
    closure = ha.closure(patch.urn)
    assert ha.by_name("cluster-receipt-ready").urn in closure
    assert {ha.by_name(f"cluster-{n}-labels").urn for n in cloud} <= closure


def test_with_one_cloud_node_cluster_dns_keeps_one_replica_that_a_drain_may_move() -> None:
    raw = stack_config("dev")
    raw["hosts"] = [h for h in raw["hosts"] if h["name"] != "interface"]
    cfg = validate(raw)
    assert [h.name for h in cfg.hosts if h.in_cluster and cfg.site(h.site).kind == "cloud"] == ["receipt"]
    ev = evaluate_config(raw)
    # Two pods on the one node: the drain's second eviction would wait forever on the budget
    # while the first pod's replacement has nowhere to go.
    spec = reveal(ev.by_name("cluster-dns-coredns").inputs)["spec"]
    assert spec["replicas"] == 1
    # Preferred, not required: while its one cloud node is drained, the pod may go elsewhere
    # instead of waiting Pending (cluster DNS down) until the uncordon.
    pod = spec["template"]["spec"]
    assert "nodeSelector" not in pod
    assert fits(pod, {"hybrid-ai.node-restriction.kubernetes.io/location": "on-prem"}, [])
    [preferred] = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["preference"]["matchExpressions"] == [{"key": "hybrid-ai.node-restriction.kubernetes.io/location", "operator": "In", "values": ["cloud"]}]
    budget = _budget(ev, {"k8s-app": "kube-dns"})
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


def test_a_cloud_node_tainted_against_cluster_dns_does_not_count_as_a_place_for_it() -> None:
    raw = stack_config("dev")  # two cloud nodes: receipt and interface
    next(h for h in raw["hosts"] if h["name"] == "interface")["taints"] = [{"key": "dedicated", "value": "api", "effect": "NoSchedule"}]
    assert reveal(evaluate_config(raw).by_name("cluster-dns-coredns").inputs)["spec"]["replicas"] == 1


def test_the_render_shows_the_patches_apart_from_the_manifests(tmp_path: Path) -> None:
    """Review 8 L6: the CoreDNS and node-label patches were only in plan.json; a reviewer of
    artifacts/kubernetes/ saw the CoreDNS budget without the patch it guards."""
    from tools.render.write import artifacts

    artifacts(evaluate_config(stack_config("ha")), tmp_path)
    patches = {p.name for p in (tmp_path / "kubernetes-patches").iterdir()}
    assert {"cluster-dns-coredns.yaml", "cluster-ws-1-labels.yaml"} <= patches
    assert not {p.name for p in (tmp_path / "kubernetes").glob("*.yaml")} & patches
    coredns = (tmp_path / "kubernetes-patches" / "cluster-dns-coredns.yaml").read_text()
    assert "name: coredns" in coredns and "namespace: kube-system" in coredns
