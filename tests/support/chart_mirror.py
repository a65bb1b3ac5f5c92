"""A local chart mirror for the lab: a Helm repository (index.yaml and chart archives) and the
Gateway API CRD bundle, served by a plain http.server on the machine's loopback.

Every chart in it is a STAND-IN, built here: the pinned name and version (what the program asks
for) and nothing of upstream's templates. Each holds only the facts the program relies on:
- a ConfigMap `<chart>-stand-in` in the release namespace, saying what it is;
- the controllers that may read Secrets cluster-wide, as pods that never run (kwok makes them
  Ready), placed by the same values as upstream's templates place them: cert-manager's
  controller, cainjector and webhook Deployments by `nodeSelector`, `cainjector.nodeSelector`,
  `webhook.nodeSelector` (each `kubernetes.io/os: linux` by default, as upstream's values),
  prometheus-operator's by `prometheusOperator.nodeSelector`, Traefik's DaemonSet by `nodeSelector`;
- cert-manager: its CRDs (cert-manager.io, acme.cert-manager.io) as templates, installed because
  the program sets `crds.enabled: true`, annotated `helm.sh/resource-policy: keep` as upstream's
  `crds.keep` (default true) has them, so uninstalling leaves them (upstream's chart does both);
  the program's ClusterIssuer and Certificate need them;
- prometheus-adapter: the ConfigMap holding the adapter's `config.yaml`, written from
  `rules.custom` as upstream's templates/configmap.yaml writes it (`rules:` then the list); with
  `rules.default` upstream adds its own container_* rules, which the stand-in refuses to fake;
- kube-prometheus-stack: prometheus-operator's CRDs (monitoring.coreos.com) in the chart's
  `crds/` folder, installed before any template (upstream ships them in its `crds` subchart's
  `crds/`); the program's PrometheusRule needs them.
The CRDs are the ones `make engine` generates from upstream's Go API types (.engine/crds); the
Gateway API bundle is the generated gateway.networking.k8s.io CRDs, one document each.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stacks.charts import pinned

CHARTS = ("cert-manager", "dcgm-exporter", "kube-prometheus-stack", "nvidia-device-plugin", "prometheus-adapter", "traefik")
# Which generated CRDs each stand-in carries, by API group, and where (templates/ or crds/).
CHART_CRDS = {"cert-manager": (("cert-manager.io", "acme.cert-manager.io"), "templates"),
              "kube-prometheus-stack": (("monitoring.coreos.com",), "crds")}
GATEWAY_GROUP = "gateway.networking.k8s.io"
STAND_IN = "hybrid-ai.test/stand-in"
# chart -> (kind, object name, values path of its node selector, upstream's default selector)
CONTROLLERS: dict[str, list[tuple[str, str, str, dict[str, str]]]] = {
    "cert-manager": [("Deployment", "cert-manager", "nodeSelector", {"kubernetes.io/os": "linux"}),
                     ("Deployment", "cert-manager-cainjector", "cainjector.nodeSelector", {"kubernetes.io/os": "linux"}),
                     ("Deployment", "cert-manager-webhook", "webhook.nodeSelector", {"kubernetes.io/os": "linux"})],
    "kube-prometheus-stack": [("Deployment", "kube-prometheus-stack-operator", "prometheusOperator.nodeSelector", {})],
    "traefik": [("DaemonSet", "traefik", "nodeSelector", {})],
}
RESTRICTED = ("securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n"
              "      containers:\n      - name: stand-in\n        image: registry.k8s.io/pause:3.10\n"
              "        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n")


def controller(kind: str, name: str, path: str) -> str:
    """A stand-in controller's template: a pod placed by the chart value at `path`."""
    labels = f"{{app.kubernetes.io/name: {name}, {STAND_IN}: \"true\"}}"
    replicas = "  replicas: 1\n" if kind == "Deployment" else ""
    return (f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {{{{ .Release.Namespace }}}}\n"
            f"  labels: {labels}\nspec:\n{replicas}  selector:\n    matchLabels: {{app.kubernetes.io/name: {name}}}\n"
            f"  template:\n    metadata:\n      labels: {labels}\n    spec:\n"
            f"      {{{{- with .Values.{path} }}}}\n      nodeSelector: {{{{- toYaml . | nindent 8 }}}}\n      {{{{- end }}}}\n"
            f"      {RESTRICTED}")


# prometheus-adapter's rules ConfigMap (upstream: templates/configmap.yaml; `config.yaml` is what
# the adapter's --config reads).
ADAPTER_CONFIG = (
    "{{- if .Values.rules.default }}{{ fail \"stand-in: upstream's default container_* rules are not reproduced\" }}{{- end }}\n"
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n"
    "  labels: {app: prometheus-adapter, release: \"{{ .Release.Name }}\"}\n"
    "data:\n  config.yaml: |\n{{- if .Values.rules.custom }}\n    rules:\n{{ toYaml .Values.rules.custom | indent 4 }}\n{{- end }}\n")


def default_values(name: str) -> str:
    values: dict[str, Any] = {"crds": {"enabled": False}}
    if name == "prometheus-adapter":  # upstream's defaults
        values["rules"] = {"default": True, "custom": [], "external": [], "resource": {}}
    for _, _, path, default in CONTROLLERS.get(name, []):
        node: dict[str, Any] = values
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = default
    return yaml.safe_dump(values)


def crds_of(crds: Path, groups: tuple[str, ...]) -> list[dict[str, Any]]:
    """The generated CRDs of these API groups (every document of every .yaml under `crds`)."""
    found = []
    for file in sorted(crds.rglob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] in groups:
                found.append(doc)
    return found


def stand_in_chart(name: str, crds: Path) -> tuple[str, bytes]:
    """(archive file name, .tgz bytes) of the stand-in for the pinned chart `name`."""
    spec = pinned(name)
    chart_yaml = {"apiVersion": "v2", "name": spec.chart, "version": spec.version, "type": "application",
                  "description": f"STAND-IN for {spec.chart} {spec.version} in the hybrid-ai test lab: not upstream's chart",
                  "annotations": {STAND_IN: "true"}}
    files = {"Chart.yaml": yaml.safe_dump(chart_yaml), "values.yaml": default_values(name),
             "templates/stand-in.yaml": (
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}-stand-in\n"
                 "  namespace: {{ .Release.Namespace }}\n  labels:\n    app.kubernetes.io/managed-by: {{ .Release.Service }}\n"
                 f"  annotations:\n    {STAND_IN}: \"true\"\ndata:\n  chart: {{{{ .Chart.Name }}}}-{{{{ .Chart.Version }}}}\n")}
    for kind, obj, path, _ in CONTROLLERS.get(name, []):
        files[f"templates/{obj}.yaml"] = controller(kind, obj, path)
    if name == "prometheus-adapter":
        files["templates/configmap.yaml"] = ADAPTER_CONFIG
    if name in CHART_CRDS:
        groups, where = CHART_CRDS[name]
        docs = crds_of(crds, groups)
        if where == "templates":  # upstream's `crds.keep` (default true) keeps them when the release goes
            for d in docs:
                d["metadata"].setdefault("annotations", {})["helm.sh/resource-policy"] = "keep"
        body = "---\n".join(yaml.safe_dump(d) for d in docs)
        assert body, f"no generated CRDs of {groups} under {crds}"
        if where == "templates":  # read as a file, so that nothing in the CRDs is taken for a template
            files["files/crds.yaml"] = body
            files["templates/crds.yaml"] = '{{- if .Values.crds.enabled }}\n{{ .Files.Get "files/crds.yaml" }}\n{{- end }}\n'
        else:
            files["crds/crds.yaml"] = body
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{spec.chart}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return f"{spec.chart}-{spec.version}.tgz", buf.getvalue()


@dataclass
class Mirror:
    url: str
    """The Helm repository (`sources.charts`)."""
    gateway_api_crds: str
    """The bundle's URL (`sources.gatewayApiCrds`)."""
    root: Path


def build(root: Path, crds: Path, base_url: str) -> None:
    entries: dict[str, list[dict[str, Any]]] = {}
    for name in CHARTS:
        file, data = stand_in_chart(name, crds)
        (root / file).write_bytes(data)
        spec = pinned(name)
        entries[spec.chart] = [{"apiVersion": "v2", "name": spec.chart, "version": spec.version, "urls": [f"{base_url}/{file}"],
                                "digest": hashlib.sha256(data).hexdigest(), "created": "2026-01-01T00:00:00Z",
                                "annotations": {STAND_IN: "true"}}]
    (root / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"}))
    gateway = crds_of(crds, (GATEWAY_GROUP,))
    assert gateway, f"no generated {GATEWAY_GROUP} CRDs under {crds}"
    (root / "gateway-api-standard-install.yaml").write_text("---\n".join(yaml.safe_dump(d) for d in gateway))


@contextmanager
def serve(root: Path, crds: Path) -> Iterator[Mirror]:
    """The mirror on 127.0.0.1 (an ephemeral port) for as long as the context lasts."""
    root.mkdir(parents=True, exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    build(root, crds, base)
    thread = threading.Thread(target=server.serve_forever, name="lab-chart-mirror", daemon=True)
    thread.start()
    try:
        yield Mirror(base, f"{base}/gateway-api-standard-install.yaml", root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
