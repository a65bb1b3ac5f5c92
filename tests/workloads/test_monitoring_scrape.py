"""What Prometheus keeps from each exporter: the dcgm-exporter's pod mapping, node-exporter's
textfile keep-list and limits, and its filesystem exclusions (review 3, items 2, 4 and 7)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.helpers import PROJECT, evaluate_config, stack_config
from tools.render.evaluate import Evaluation

# kube-prometheus-stack 88.5.3 values.yaml, prometheus-node-exporter.extraArgs (the chart's defaults).
CHART_MOUNT_EXCLUDE = r"^/(dev|proc|sys|run/containerd/.+|var/lib/docker/.+|var/lib/kubelet/.+)($|/)"
CHART_FS_TYPES_EXCLUDE = ("^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue"
                          "|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs|erofs)$")


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"))


def node_exporter(dev: Evaluation) -> dict[str, Any]:
    values: dict[str, Any] = dev.by_name("monitoring-stack").inputs["values"]["prometheus-node-exporter"]
    return values


def kept(rules: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """Prometheus' `keep` relabeling: source label values joined by the separator, the regex anchored."""
    for rule in rules:
        assert rule["action"] == "keep"
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule["sourceLabels"])  # Prometheus default
        if not re.fullmatch(rule["regex"], value):
            return False
    return True


def test_dcgm_exporter_keeps_the_workloads_pod_labels_not_its_own(dev: Evaluation) -> None:
    monitor = dev.by_name("monitoring-dcgm-exporter").inputs["values"]["serviceMonitor"]
    # The exporter pod's own target labels are dropped: the workload's stay as scraped and an
    # unshared GPU has no `pod` label.
    assert monitor["relabelings"] == [{"action": "labeldrop", "regex": "pod|namespace|container"}]


def test_a_workstations_gpu_exporter_cannot_claim_another_job_or_serve_other_series(dev: Evaluation) -> None:
    monitor = dev.by_name("monitoring-dcgm-exporter").inputs["values"]["serviceMonitor"]
    assert monitor["honorLabels"] is False  # job and instance stay the target's
    rules = monitor["metricRelabelings"]
    assert kept(rules, {"__name__": "DCGM_FI_DEV_GPU_UTIL"}) and kept(rules, {"__name__": "DCGM_EXP_XID_ERRORS_COUNT"})
    for name in ("hybridai_datastore_backup_last_success_timestamp_seconds", "node_cpu_seconds_total", "up", "xDCGM_FI_DEV_GPU_UTIL"):
        assert not kept(rules, {"__name__": name}), name


def test_the_backup_alert_counts_only_the_stacks_control_planes() -> None:
    from components.workloads.alerting import BACKUP_ALERT, alert_rules
    spec = alert_rules(True, ["cp-1", "cp.2"])
    (expr,) = [r["expr"] for g in spec["groups"] for r in g["rules"] if r.get("alert") == BACKUP_ALERT]
    assert expr.count('{job="node-exporter",node=~"cp\\-1|cp\\.2"}') == 2 and "receipt" not in expr, expr
    # The dev stack with backups plans alerts.yaml as promtool tests it (its control plane is
    # `receipt`): tests/workloads/test_alerting.py::test_the_backup_alert_exists_only_when_backups_are_on.


def test_only_the_control_plane_may_report_the_datastore_backup_and_textfiles_cannot_add_other_names(dev: Evaluation) -> None:
    rules = node_exporter(dev)["prometheus"]["monitor"]["metricRelabelings"]
    backup = "hybridai_datastore_backup_last_success_timestamp_seconds"
    assert kept(rules, {"__name__": "node_cpu_seconds_total", "node": "ws-1"})
    assert kept(rules, {"__name__": "hybridai_wireguard_peer_last_handshake_seconds", "node": "ws-1"})
    assert kept(rules, {"__name__": backup, "node": "receipt"})  # dev's control plane
    assert not kept(rules, {"__name__": backup, "node": "ws-1"})  # a workstation's root cannot silence the alert
    assert not kept(rules, {"__name__": backup, "node": "receipt2"})
    assert not kept(rules, {"__name__": "DCGM_FI_DEV_XID_ERRORS", "node": "ws-1"})  # no forged GPU alerts
    assert not kept(rules, {"__name__": "junk_series_0001", "node": "ws-1"})


def test_a_flooding_host_fails_only_its_own_scrape(dev: Evaluation) -> None:
    monitor = node_exporter(dev)["prometheus"]["monitor"]
    # The chart's sampleLimit 0 is no limit; the limit counts after the keep-list.
    assert 0 < monitor["sampleLimit"] <= 50000
    assert monitor["labelLimit"] > 0 and monitor["labelValueLengthLimit"] > 0


def test_node_exporter_keeps_the_charts_filesystem_exclusions_and_adds_microk8s_paths(dev: Evaluation) -> None:
    args = node_exporter(dev)["extraArgs"]
    assert "--collector.textfile.directory=/host/root/var/lib/node_exporter/textfile" in args
    assert f"--collector.filesystem.fs-types-exclude={CHART_FS_TYPES_EXCLUDE}" in args
    (mounts,) = [a.split("=", 1)[1] for a in args if a.startswith("--collector.filesystem.mount-points-exclude=")]
    for path in ("/proc", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm", "/var/lib/kubelet/pods/x/volumes/v",
                 "/var/snap/microk8s/common/var/lib/kubelet/pods/x/volumes/kubernetes.io~projected/kube-api-access-1",
                 "/var/snap/microk8s/common/run/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm"):
        assert re.search(mounts, path), path
        assert re.search(CHART_MOUNT_EXCLUDE, path) or path.startswith("/var/snap/"), path
    for path in ("/", "/boot", "/var/snap/microk8s/common", "/var/snap/microk8s/common/default-storage"):
        assert not re.search(mounts, path), path


def test_dcgm_exporter_exports_every_gpu_metric_we_query_and_the_xid_window_count(dev: Evaluation) -> None:
    # customMetrics replaces the chart's list whole (mounted over default-counters.csv, which
    # `arguments` reads): a metric the alerts or dashboards use must be in it.
    values = dev.by_name("monitoring-dcgm-exporter").inputs["values"]
    assert values.get("arguments", ["-f", "/etc/dcgm-exporter/default-counters.csv"]) == ["-f", "/etc/dcgm-exporter/default-counters.csv"]
    lines = [line for line in values["customMetrics"].splitlines() if line.strip() and not line.startswith("#")]
    fields = {}
    for line in lines:
        name, kind, help_text = (part.strip() for part in line.split(","))  # exactly 3 CSV fields
        assert kind in ("gauge", "counter") and help_text
        fields[name] = kind
    wanted = yaml.safe_load((PROJECT / "charts/monitoring/metrics.yaml").read_text())
    (dcgm,) = [v for k, v in wanted.items() if k.startswith("dcgm-exporter")]
    assert set(dcgm) <= set(fields)
    assert "DCGM_EXP_XID_ERRORS_COUNT" in fields  # GpuXidError's windowed count


def test_gpu_queries_use_the_host_label_of_the_pinned_dcgm_exporter() -> None:
    # dcgm-exporter 4.8.2 names the host `Hostname`; the next release renames it `hostname`
    # (d5e5f51). A pin bump fails here until the alerts and dashboards are checked.
    pin = yaml.safe_load((PROJECT / "charts/dcgm-exporter/chart.yaml").read_text())
    assert pin["version"] == "4.8.2", "dcgm-exporter moved: check the Hostname -> hostname rename (docs/monitoring.md)"
    text = (PROJECT / "charts/monitoring/alerts.yaml").read_text() + (PROJECT / "charts/monitoring/dashboards/gpus.json").read_text()
    assert "Hostname" in text and not re.search(r"\bhostname\b", text)


def test_the_operators_crds_are_applied_on_every_install_and_upgrade_by_the_charts_job(dev: Evaluation) -> None:
    # Helm never upgrades crds/ (kube-prometheus-stack README); the upgrade Job is a
    # pre-install/pre-upgrade hook, so the chart must stay a Release (which runs hooks).
    stack = dev.by_name("monitoring-stack")
    assert stack.type == "kubernetes:helm.sh/v3:Release"
    crds = stack.inputs["values"]["crds"]
    assert crds["enabled"] is True and crds["upgradeJob"]["enabled"] is True
    assert crds["upgradeJob"]["nodeSelector"] == {"hybrid-ai.node-restriction.kubernetes.io/location": "cloud"}
    hooks = yaml.safe_load((PROJECT / "charts/kube-prometheus-stack/chart.yaml").read_text())["hooks"]
    assert "charts/crds/templates/upgrade/job.yaml" in hooks
