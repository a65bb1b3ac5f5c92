"""Stand-in for the pinned charts' templates, in the one thing the trust tests need: each pod a
chart runs, where in the values its placement lives, the chart's own default placement, and
what its service account may do (its RBAC at the pin). Read in upstream's source at the pinned
versions (charts/*/chart.yaml) and recorded in docs/upstream.md; nothing here is installed.

A power is what makes a pod's node a way into the cluster: reading Secrets outside its own
namespace, creating pods (directly or through a controller that makes them), or rewriting
admission webhooks or CRDs (which steer every later request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SECRETS = "reads Secrets in every namespace"
PODS = "creates pods"
WEBHOOKS = "rewrites admission webhooks"
CRDS = "rewrites CRDs"
NODE_STATUS = "patches nodes/status of any Node"
POD_STATUS = "patches pods/status of any pod"

Values = Mapping[str, Any]


def at(values: Values, path: tuple[str, ...]) -> Values:
    for key in path:
        values = values.get(key) or {}
    return values


def _grafana(values: Values) -> frozenset[str]:
    """grafana chart (12.11.1, kube-prometheus-stack 88.5.3's): with a sidecar on, a ClusterRole
    reading every ConfigMap and Secret unless `rbac.namespaced` (then a Role in its namespace),
    templates/clusterrole.yaml and role.yaml; the sidecar watches `searchNamespace` (ALL by
    kube-prometheus-stack's default)."""
    g = at(values, ("grafana",))
    namespaced = bool(at(g, ("rbac",)).get("namespaced", False)) and not at(g, ("rbac",)).get("extraClusterRoleRules")
    return frozenset() if namespaced else frozenset({SECRETS})


@dataclass(frozen=True)
class ChartWorkload:
    chart: str
    """The chart's name (charts/<name>/chart.yaml `chart`)."""
    pod: str
    path: tuple[str, ...]
    """Where in the values its nodeSelector, affinity and tolerations are."""
    belongs: Literal["cloud", "gpu", "every node"]
    """Where the program means it to run."""
    powers: frozenset[str] | Callable[[Values], frozenset[str]] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """The chart's own placement for it, when the values set none."""
    source: str = ""

    def powers_with(self, values: Values) -> frozenset[str]:
        return self.powers(values) if callable(self.powers) else self.powers

    def pod_spec(self, values: Values) -> dict[str, Any]:
        """Its pod's placement: the chart's defaults with the values over them (Helm merges maps)."""
        own = at(values, self.path)
        spec: dict[str, Any] = {}
        for key in ("nodeSelector", "affinity", "tolerations"):
            default, given = self.defaults.get(key), own.get(key)
            if isinstance(default, Mapping) and isinstance(given, Mapping):
                spec[key] = {**default, **given}
            elif given is not None:
                spec[key] = given
            elif default is not None:
                spec[key] = default
        return spec


LINUX = {"nodeSelector": {"kubernetes.io/os": "linux"}}
# nvidia-device-plugin v0.18.2 values.yaml: any of these labels, "true".
DEVICE_PLUGIN_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": key, "operator": "In", "values": ["true"]}]}
    for key in ("feature.node.kubernetes.io/pci-10de.present", "feature.node.kubernetes.io/cpu-model.vendor_id", "nvidia.com/gpu.present")
]}}}

WORKLOADS = (
    ChartWorkload("cert-manager", "controller", (), "cloud", frozenset({SECRETS, PODS}), LINUX,
                  "templates/rbac.yaml: controller-certificates/-issuers/-clusterissuers (secrets, all verbs), -challenges (pods create)"),
    ChartWorkload("cert-manager", "cainjector", ("cainjector",), "cloud", frozenset({SECRETS, WEBHOOKS, CRDS}), LINUX,
                  "templates/cainjector-rbac.yaml: secrets get/list/watch; webhook configurations, CRDs, APIServices update"),
    ChartWorkload("cert-manager", "webhook", ("webhook",), "cloud", frozenset(), LINUX,
                  "templates/webhook-rbac.yaml: its own CA Secret (Role), subjectaccessreviews"),
    ChartWorkload("cert-manager", "startupapicheck", ("startupapicheck",), "cloud", frozenset(), LINUX,
                  "templates/startupapicheck-rbac.yaml: certificates create in its namespace"),
    ChartWorkload("kube-prometheus-stack", "prometheus-operator", ("prometheusOperator",), "cloud", frozenset({SECRETS, PODS}), {},
                  "templates/prometheus-operator/clusterrole.yaml: configmaps and secrets '*', statefulsets '*'"),
    ChartWorkload("kube-prometheus-stack", "admission webhook patch jobs", ("prometheusOperator", "admissionWebhooks", "patch"), "cloud",
                  frozenset({WEBHOOKS}), {}, "templates/prometheus-operator/admission-webhooks/job-patch/clusterrole.yaml"),
    ChartWorkload("kube-prometheus-stack", "CRD upgrade job", ("crds", "upgradeJob"), "cloud", frozenset({CRDS}), {},
                  "charts/crds/templates/upgrade/clusterrole.yaml"),
    ChartWorkload("kube-prometheus-stack", "kube-state-metrics", ("kube-state-metrics",), "cloud", frozenset({SECRETS}), {},
                  "kube-state-metrics 8.4.0 templates/role.yaml (ClusterRole; `secrets` collector on by default)"),
    ChartWorkload("kube-prometheus-stack", "grafana", ("grafana",), "cloud", _grafana, {}, "grafana 12.11.1 templates/clusterrole.yaml, role.yaml"),
    ChartWorkload("kube-prometheus-stack", "prometheus", ("prometheus", "prometheusSpec"), "cloud", frozenset(), {},
                  "templates/prometheus/clusterrole.yaml: nodes, services, endpoints, pods read"),
    ChartWorkload("kube-prometheus-stack", "alertmanager", ("alertmanager", "alertmanagerSpec"), "cloud", frozenset(), {}, "no RBAC"),
    ChartWorkload("kube-prometheus-stack", "node-exporter", ("prometheus-node-exporter",), "every node", frozenset(), {},
                  "prometheus-node-exporter 4.56.1: no RBAC rules"),
    ChartWorkload("traefik", "traefik", (), "cloud", frozenset({SECRETS}), {},
                  "traefik 41.3.0 templates/rbac/clusterrole.yaml: secrets get/list/watch"),
    ChartWorkload("nvidia-device-plugin", "device plugin", (), "gpu", frozenset(), {"affinity": DEVICE_PLUGIN_AFFINITY},
                  "v0.18.2 templates/role.yml: nodes get/list/watch"),
    ChartWorkload("dcgm-exporter", "dcgm-exporter", (), "gpu", frozenset(), {},
                  "templates/role.yaml: one ConfigMap get; clusterrole.yaml only with kubernetes.enablePodLabels"),
)


@dataclass(frozen=True)
class AddonWorkload:
    """A MicroK8s addon's pod (kube-system); placed only by a DeploymentPatch of the program's, if any."""

    deployment: str
    belongs: Literal["cloud", "anywhere", "every node"]
    powers: frozenset[str]
    source: str
    writes: frozenset[str] = frozenset()
    """Writes to Nodes and pods (metadata included) its service account may make: what root on its node can do with its token."""


ADDONS = (
    AddonWorkload("hostpath-provisioner", "cloud", frozenset({PODS}),
                  "microk8s-core-addons addons/hostpath-storage/storage.yaml @ 2d6e317: ClusterRole microk8s-hostpath, pods get/create/delete"),
    AddonWorkload("coredns", "anywhere", frozenset(), "addons/dns/coredns.yaml @ 2d6e317: endpoints, services, pods, namespaces, endpointslices list/watch"),
    AddonWorkload("metrics-server", "cloud", frozenset(),
                  "addons/metrics-server/metrics-server.yaml @ 2d6e317: nodes/metrics get, pods and nodes read; serves metrics.k8s.io (HPAs)"),
    AddonWorkload("calico-kube-controllers", "cloud", frozenset(),
                  "microk8s upgrade-scripts/000-switch-to-calico/resources/calico.yaml @ v1.32 (what generate-cni.sh installs): pods read"),
    AddonWorkload("calico-node", "every node", frozenset(),
                  "same file: serviceaccounts/token create (calico-cni-plugin only); pods, nodes, namespaces get; nodes/status patch/update "
                  "and pods/status patch, any Node and pod (a status update keeps the labels sent); no secrets",
                  frozenset({NODE_STATUS, POD_STATUS})),
)
