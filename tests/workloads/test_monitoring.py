"""Monitoring (issue 16 #2-#5): alerts tested by promtool both ways, dashboards that query only
metrics our exporters produce, the charts and their values, the WireGuard metrics timer, the
outputs, and a blast radius of zero on existing resources."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.load import ConfigError
from tests.support.helpers import PROJECT, evaluate_config, stack_config, taint_gpu_host, unavailable
from tools.render.evaluate import Evaluation

ASSETS = PROJECT / "charts" / "monitoring"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART = "kubernetes:helm.sh/v4:Chart"


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"))


def without_monitoring() -> dict[str, Any]:
    raw = stack_config("dev")
    del raw["monitoring"]
    return raw


@pytest.fixture(scope="module")
def off() -> Evaluation:
    return evaluate_config(without_monitoring())


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool not installed (Debian package `prometheus`)")
    return path


# --- Alerts ------------------------------------------------------------------------------

def alert_names() -> list[str]:
    groups = yaml.safe_load((ASSETS / "alerts.yaml").read_text())["groups"]
    return [r["alert"] for g in groups for r in g["rules"] if "alert" in r]


def test_promtool_checks_the_rules_and_passes_every_case() -> None:
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", "alerts.yaml"], cwd=ASSETS, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run([tool, "test", "rules", "alerts_test.yaml"], cwd=ASSETS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_one_case_and_stays_quiet_in_another() -> None:
    names = alert_names()
    assert len(names) >= 7
    assert {"NodeNotReady", "GpuXidError", "GpuMemoryNearlyFull", "MeshPeerNoHandshake", "ModelErrorRateHigh",
            "ModelLatencyHigh", "CertificateExpiresSoon", "DatastoreBackupMissing"} <= set(names)
    cases = [c for t in yaml.safe_load((ASSETS / "alerts_test.yaml").read_text())["tests"] for c in t["alert_rule_test"]]
    for name in names:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{name}: no case where it stays quiet"


def test_a_weakened_alert_fails_its_promtool_case(tmp_path: Path) -> None:
    # The cases pin behaviour: a handshake limit of 10 minutes instead of 3 must fail them.
    tool = promtool()
    text = (ASSETS / "alerts.yaml").read_text()
    assert "hybridai_wireguard_peer_last_handshake_seconds > 180" in text
    (tmp_path / "alerts.yaml").write_text(text.replace("hybridai_wireguard_peer_last_handshake_seconds > 180",
                                                       "hybridai_wireguard_peer_last_handshake_seconds > 600"))
    shutil.copy(ASSETS / "alerts_test.yaml", tmp_path)
    result = subprocess.run([tool, "test", "rules", "alerts_test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "MeshPeerNoHandshake" in result.stdout + result.stderr


def test_the_plans_prometheus_rule_is_the_tested_file(dev: Evaluation) -> None:
    rule = dev.by_name("monitoring-alerts").inputs
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    # The tested file, but for the backup alert: the dev stack takes no backups (test_alerting.py has it with them).
    tested = yaml.safe_load((ASSETS / "alerts.yaml").read_text())
    for group in tested["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != "DatastoreBackupMissing"]
    assert rule["spec"] == tested
    assert rule["metadata"]["namespace"] == "monitoring"


# --- Metric names ------------------------------------------------------------------------

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "or", "and",
    "unless", "rate", "irate", "increase", "changes", "max_over_time", "min_over_time", "histogram_quantile",
    "time", "vector", "absent", "offset", "bool", "e",
}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: strings, label matchers, groupings and ranges removed."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b[0-9][0-9.e+]*\b", "", expr)
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr) if w not in PROMQL_WORDS}


def catalog() -> set[str]:
    return {m for names in yaml.safe_load((ASSETS / "metrics.yaml").read_text()).values() for m in names}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((ASSETS / "dashboards").glob("*.json"))}


def test_metric_name_extraction() -> None:
    assert metric_names('sum by (model_name) (rate(:tensorflow:serving:request_count{status!="OK"}[5m])) > 1e6') == {
        ":tensorflow:serving:request_count"}
    assert metric_names("time() - hybridai_x > 180 or absent(up)") == {"hybridai_x", "up"}


def test_alerts_query_only_metrics_our_exporters_produce() -> None:
    groups = yaml.safe_load((ASSETS / "alerts.yaml").read_text())["groups"]
    used = set().union(*(metric_names(r["expr"]) for g in groups for r in g["rules"]))
    assert used <= catalog(), used - catalog()


def test_dashboards_are_valid_and_query_only_known_metrics_from_one_datasource() -> None:
    boards = dashboards()
    assert set(boards) == {"cluster.json", "gpus.json", "mesh.json", "llm.json"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    # kube-prometheus-stack 88.5.3 provisions its Prometheus datasource with uid `prometheus`.
    values = yaml.safe_load((PROJECT / "charts" / "kube-prometheus-stack" / "values.yaml").read_text())
    assert "datasources" not in values["grafana"].get("sidecar", {})  # the chart's default uid stands
    for file, board in boards.items():
        assert board["panels"], file
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), file
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, (file, panel["title"])
            assert panel["targets"], (file, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                names = metric_names(target["expr"])
                assert names and names <= catalog(), (file, panel["title"], names - catalog())


def test_dashboards_load_from_the_plans_configmaps(dev: Evaluation) -> None:
    maps = [r for r in dev.of_type("kubernetes:core/v1:ConfigMap") if r.name.startswith("monitoring-dashboard-")]
    assert {r.name for r in maps} == {"monitoring-dashboard-cluster", "monitoring-dashboard-gpus", "monitoring-dashboard-mesh", "monitoring-dashboard-llm"}
    # The sidecar's label at kube-prometheus-stack 88.5.3 (grafana.sidecar.dashboards.label/labelValue).
    sidecar = yaml.safe_load((PROJECT / "charts" / "kube-prometheus-stack" / "values.yaml").read_text())["grafana"]["sidecar"]["dashboards"]
    for r in maps:
        assert r.inputs["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"] == "1"
        ((file, text),) = r.inputs["data"].items()
        assert json.loads(text) == dashboards()[file]


# --- Charts, scraping, Grafana's reach -----------------------------------------------------

def test_monitoring_charts_sizes_and_placement(dev: Evaluation) -> None:
    kinds = {r.name: r.type for r in dev.resources if r.name.startswith("monitoring-") and r.type in (HELM_RELEASE, HELM_CHART)}
    # kube-prometheus-stack's admission webhook certificate is made by hook Jobs: a Release runs them.
    assert kinds == {"monitoring-stack": HELM_RELEASE, "monitoring-dcgm-exporter": HELM_CHART}
    stack = dev.by_name("monitoring-stack").inputs
    assert (stack["chart"], stack["version"]) == ("kube-prometheus-stack", "88.5.3")
    spec = stack["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d" and spec["retentionSize"] == "8704MB"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "microk8s-hostpath" and claim["resources"]["requests"]["storage"] == "10Gi"
    assert spec["nodeSelector"] == {"hybrid-ai.node-restriction.kubernetes.io/location": "cloud"}
    assert spec["ruleSelectorNilUsesHelmValues"] is False  # our PrometheusRule has no release label
    assert stack["values"]["grafana"]["persistence"]["storageClassName"] == "microk8s-hostpath"
    assert "--collector.textfile.directory=/host/root/var/lib/node_exporter/textfile" in stack["values"]["prometheus-node-exporter"]["extraArgs"]
    node_exporter = stack["values"]["prometheus-node-exporter"]
    assert node_exporter["service"]["listenOnAllInterfaces"] is False  # metrics on the VPN address only
    assert node_exporter["prometheus"]["monitor"]["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]  # alerts name hosts by node
    for part in ("kubeScheduler", "kubeControllerManager", "kubeProxy", "kubeEtcd"):  # inside kubelite / dqlite
        assert stack["values"][part] == {"enabled": False}, part
    # kube_node_labels (the dashboards' sites) carries only allow-listed labels.
    assert stack["values"]["kube-state-metrics"]["metricLabelsAllowlist"] == ["nodes=[hybrid-ai.node-restriction.kubernetes.io/site,hybrid-ai.node-restriction.kubernetes.io/location,hybrid-ai.node-restriction.kubernetes.io/gpu-model]"]
    gpu = dev.by_name("monitoring-dcgm-exporter").inputs
    assert (gpu["chart"], gpu["version"]) == ("dcgm-exporter", "4.8.2")
    assert gpu["values"]["runtimeClassName"] == "nvidia"
    assert gpu["values"]["nodeSelector"] == {"hybrid-ai.node-restriction.kubernetes.io/gpu": "true"}
    assert {"name": "KUBERNETES_VIRTUAL_GPUS", "value": "true"} in gpu["values"]["extraEnv"]
    assert gpu["values"]["kubeletPath"] == "/var/snap/microk8s/common/var/lib/kubelet/pod-resources"  # MicroK8s' --root-dir
    assert gpu["values"]["tolerations"] == []  # dev's GPU nodes carry no taint
    assert dev.by_name("monitoring-stack").urn in dev.by_name("monitoring-alerts").dependencies  # CRDs first


def test_retention_storage_and_gpu_taints_come_from_config() -> None:
    raw = stack_config("dev")
    raw["monitoring"] |= {"retention": "30d", "storageSize": "40Gi", "storageClass": "fast"}
    taint = {"key": "hybrid-ai.example.com/gpu", "value": "true", "effect": "NoSchedule"}
    taint_gpu_host(raw, "ws-1", [taint])
    ev = evaluate_config(raw)
    assert ev.by_name("monitoring-dcgm-exporter").inputs["values"]["tolerations"] == [taint | {"operator": "Equal"}]
    spec = ev.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["retentionSize"]) == ("30d", "34816MB")
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "fast"


def test_tf_serving_serves_prometheus_metrics_that_prometheus_scrapes(dev: Evaluation) -> None:
    tf = dev.by_name("tf-serving-deployment").inputs["spec"]["template"]["spec"]["containers"][0]
    assert "--monitoring_config_file=/etc/tf-serving/monitoring.config" in tf["args"]
    config = dev.by_name("tf-serving-models").inputs["data"]["monitoring.config"]
    assert "enable: true" in config and 'path: "/monitoring/prometheus/metrics"' in config
    jobs = {j["job_name"]: j for j in dev.by_name("monitoring-stack").inputs["values"]["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]}
    assert jobs["tf-serving"]["metrics_path"] == "/monitoring/prometheus/metrics"
    assert jobs["tf-serving"]["relabel_configs"][0]["regex"] == "tf-serving;8501"
    assert jobs["cert-manager"]["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["cert-manager"]}
    policy = dev.by_name("monitoring-scrape-tf-serving").inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "tf-serving"}}
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8501}]
    assert policy["ingress"][0]["from"] == [{  # prometheus-operator labels the Prometheus pods it runs
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }]


def test_grafana_has_no_public_entry(dev: Evaluation) -> None:
    values = dev.by_name("monitoring-stack").inputs["values"]["grafana"]
    assert values["ingress"]["enabled"] is False and values["service"]["type"] == "ClusterIP"
    assert "adminPassword" not in values  # the chart then makes a random one, kept across upgrades
    routes = [r for r in dev.resources if r.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"]
    assert routes and all("grafana" not in json.dumps(r.inputs) for r in routes)
    policy = dev.by_name("monitoring-grafana").inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert policy["ingress"] == [{"from": [{"podSelector": {}}]}]  # its own namespace only


def test_outputs_name_grafana_and_every_public_model(dev: Evaluation, off: Evaluation) -> None:
    assert dev.outputs["monitoring"] == {
        "grafanaUrl": "http://localhost:3000",
        "grafanaPortForward": "kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80",
    }
    assert dev.outputs["publicEndpoints"] == {"receipt-api": "https://api.example.com/receipt"}
    assert "monitoring" not in off.outputs and off.outputs["publicEndpoints"] == dev.outputs["publicEndpoints"]


# --- Optional, and no blast radius ------------------------------------------------------------

def test_monitoring_is_off_unless_set_and_adding_it_changes_no_existing_resource(dev: Evaluation, off: Evaluation) -> None:
    added, removed, modified = off.changes(dev)
    assert removed == set() and modified == set()
    in_cluster = {"receipt", "interface", "ws-1", "ws-2"}
    assert {a for a in added if not a.startswith("monitoring")} == {
        f"{h}-mesh-metrics{suffix}" for h in in_cluster for suffix in ("", "-timer")}
    assert {"monitoring", "monitoring-stack", "monitoring-alerts", "monitoring-grafana"} <= added


@pytest.mark.parametrize(("key", "value", "fix"), [
    ("retention", "forever", "use hours, days or weeks"),
    ("storageSize", "10TB", "not a volume size; write a number and a unit as Kubernetes does"),
    ("meshIntervalSeconds", 1, "greater than or equal to 10"),
    ("grafanaUrl", "x", "unknown key; remove it or check its spelling; this section takes `enabled`"),
])
def test_bad_monitoring_config_is_one_message_naming_the_key(key: str, value: Any, fix: str) -> None:
    raw = stack_config("dev")
    raw["monitoring"][key] = value
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    (problem,) = err.value.problems
    assert problem.startswith(f"hybrid-ai:monitoring.{key}: ") and fix in problem, problem
    assert seen.resources == []



def test_monitoring_waits_for_the_nodes_it_runs_on(dev: Evaluation) -> None:
    stack, dcgm = dev.closure(dev.by_name("monitoring-stack").urn), dev.closure(dev.by_name("monitoring-dcgm-exporter").urn)
    ready = {n: dev.by_name(f"cluster-{n}-ready").urn for n in ("interface", "ws-1", "ws-2")}
    assert ready["interface"] in stack and ready["ws-1"] not in stack  # Prometheus does not wait for workstations
    assert {ready["ws-1"], ready["ws-2"], dev.by_name("gpu-sharing-runtime-class").urn} <= dcgm  # runtimeClassName nvidia
