"""The public entry through the Gateway API: pinned CRDs installed first, Traefik on the ingress
nodes' hostPorts 80/443, one Gateway, an HTTPRoute per public model on today's paths, TLS from
cert-manager's Gateway HTTP-01 solver or a bundle you bring, and no ingress-nginx left."""

from __future__ import annotations

import json

import pytest

from components.workloads.ingress import ENTRY_POINTS, TRAEFIK_CONTROLLER
from stacks.charts import GATEWAY_API_CRDS, pinned
from stacks.config.consistency.network import INGRESS_HOST_PORTS
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal

ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


def test_the_gateway_api_crds_are_pinned_and_come_before_what_uses_them(dev: Evaluation) -> None:
    crds = dev.by_name("ingress-gateway-api-crds")
    assert crds.type == "kubernetes:yaml/v2:ConfigFile"
    assert crds.inputs["file"] == GATEWAY_API_CRDS
    assert GATEWAY_API_CRDS.endswith("/releases/download/v1.5.1/standard-install.yaml")  # standard channel, pinned
    # cert-manager exits at start with enableGatewayAPI and no CRDs (v1.16.2, pkg/controller/context.go).
    for name in ("ingress-traefik", "ingress-gateway-class", "ingress-gateway", "ingress-cert-manager", "receipt-api-route"):
        assert crds.urn in dev.closure(dev.by_name(name).urn), name
    assert dev.by_name("ingress-gateway").urn in dev.closure(dev.by_name("receipt-api-route").urn)


def test_traefik_serves_the_gateway_on_host_ports_80_and_443_of_the_ingress_nodes(dev: Evaluation) -> None:
    values = dev.by_name("ingress-traefik").inputs["values"]
    assert values["deployment"]["kind"] == "DaemonSet" and values["nodeSelector"] == {"hybrid-ai.node-restriction.kubernetes.io/ingress": "true", "hybrid-ai.node-restriction.kubernetes.io/location": "cloud"}
    assert (values["ports"]["web"]["hostPort"], values["ports"]["websecure"]["hostPort"]) == INGRESS_HOST_PORTS
    assert values["providers"]["kubernetesGateway"]["enabled"] is True
    # A surge pod could never bind the hostPorts its predecessor holds on the same node.
    assert values["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    assert values["providers"]["kubernetesIngress"]["enabled"] is False  # nothing but the Gateway API
    assert values["gateway"]["enabled"] is False and values["gatewayClass"]["enabled"] is False  # ours, below
    assert dev.by_name("ingress-traefik").inputs["skipAwait"] is True  # see charts/traefik/chart.yaml
    gateway_class = dev.by_name("ingress-gateway-class").inputs
    assert gateway_class["spec"] == {"controllerName": TRAEFIK_CONTROLLER}
    gateway = dev.by_name("ingress-gateway").inputs
    assert gateway["metadata"]["namespace"] == "hybrid-ai" and gateway["spec"]["gatewayClassName"] == "traefik"
    # Traefik matches a listener to the entry point of the same port inside the pod (chart 41.3.0
    # defaults: web 8000, websecure 8443); the hostPorts lead there.
    assert ENTRY_POINTS == {"http": 8000, "https": 8443}
    listeners = {li["name"]: li for li in gateway["spec"]["listeners"]}
    assert {n: li["port"] for n, li in listeners.items()} == ENTRY_POINTS
    assert all(li["hostname"] == "api.example.com" for li in listeners.values())
    assert listeners["https"]["tls"] == {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "hybrid-ai-tls"}]}


def test_each_public_model_has_an_https_route_on_todays_path_and_autoscaling(dev: Evaluation) -> None:
    route = dev.by_name("receipt-api-route").inputs["spec"]
    assert route == {
        "parentRefs": [{"name": "public", "sectionName": "https"}],
        "hostnames": ["api.example.com"],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/receipt"}}],
                   "backendRefs": [{"name": "receipt-api", "port": 8000}]}],
    }
    assert {r.name for r in dev.of_type(ROUTE)} == {"receipt-api-route", "ingress-https-redirect"}
    redirect = dev.by_name("ingress-https-redirect").inputs["spec"]
    assert redirect["parentRefs"] == [{"name": "public", "sectionName": "http"}]
    assert redirect["rules"][0]["filters"][0]["requestRedirect"] == {"scheme": "https", "statusCode": 301}
    hpa = dev.by_name("receipt-api-hpa").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert dev.by_name("receipt-api-pdb").inputs["spec"]["minAvailable"] == 1
    assert not {r.name for r in dev.resources} & {"ocr-engine-hpa", "ocr-engine-route"}
    allowed = dev.by_name("receipt-api-from-gateway").inputs
    assert allowed["metadata"]["name"] == "receipt-api-from-gateway"  # not the old policy's name: see the migration
    assert allowed["spec"]["ingress"] == [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
                                           "ports": [{"protocol": "TCP", "port": 8000}]}]


def test_without_tls_routes_attach_to_plain_http_and_nothing_redirects() -> None:
    raw = stack_config("dev")
    raw["ingress"] = {"domain": "api.example.com", "tls": "none"}
    ev = evaluate_config(raw)
    assert [li["name"] for li in ev.by_name("ingress-gateway").inputs["spec"]["listeners"]] == ["http"]
    assert ev.by_name("receipt-api-route").inputs["spec"]["parentRefs"] == [{"name": "public", "sectionName": "http"}]
    names = {r.name for r in ev.resources}
    assert not names & {"ingress-https-redirect", "ingress-acme-solver", "ingress-issuer"}  # no ACME, no opening


def test_the_gateway_data_plane_reaches_cert_managers_gateway_http01_solver(dev: Evaluation) -> None:
    # cert-manager v1.16.2 runs the solver pod in the Certificate's namespace (ch.Namespace),
    # labelled acme.cert-manager.io/http01-solver=true, on port 8089 (pkg/issuer/acme/http), and
    # attaches its HTTPRoute (an Exact path) to the parentRefs the solver names.
    policy = dev.by_name("ingress-acme-solver").inputs
    certificate = dev.by_name("ingress-certificate").inputs
    assert policy["metadata"]["namespace"] == certificate["metadata"]["namespace"] == "hybrid-ai"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
                     "ports": [{"protocol": "TCP", "port": 8089}]}],
    }
    acme = dev.by_name("ingress-issuer").inputs["spec"]["acme"]
    assert "acme-staging" in acme["server"]  # dev uses the staging issuer
    assert acme["solvers"] == [{"http01": {"gatewayHTTPRoute": {"parentRefs": [
        {"name": "public", "namespace": "hybrid-ai", "kind": "Gateway", "sectionName": "http"}]}}}]
    config = dev.by_name("ingress-cert-manager").inputs["values"]["config"]
    assert config == {"apiVersion": "controller.config.cert-manager.io/v1alpha1", "kind": "ControllerConfiguration",
                      "enableGatewayAPI": True}
    assert pinned("cert-manager").version == "v1.16.2"  # the version the facts above were read at


def test_prod_uses_the_production_issuer() -> None:
    prod = evaluate_config(stack_config("prod"))
    assert prod.by_name("ingress-issuer").inputs["spec"]["acme"]["server"] == "https://acme-v02.api.letsencrypt.org/directory"


def test_bring_your_own_certificate_stays_secret() -> None:
    raw = stack_config("dev")
    raw["ingress"] = {"domain": "api.example.com", "tls": "byo", "tlsCertConfig": "tlsBundle"}
    pem = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nS0VZLUNBTkFSWQ==\n-----END PRIVATE KEY-----\n"
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "tlsBundle": pem})
    data = ev.by_name("ingress-tls").inputs["stringData"]
    assert isinstance(data, Secret) or all(isinstance(v, Secret) for v in data.values())
    assert reveal(data)["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "ingress-issuer" not in {r.name for r in ev.resources}
    listeners = ev.by_name("ingress-gateway").inputs["spec"]["listeners"]
    assert listeners[1]["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "hybrid-ai-tls"}]


@pytest.mark.parametrize("stack", ["dev", "prod", "netmaker"])
def test_no_ingress_nginx_object_remains(stack: str) -> None:
    ev = evaluate_config(stack_config(stack), stack=stack)
    assert not [r.name for r in ev.resources if r.type.endswith(":Ingress") or r.type.endswith(":IngressClass")]
    assert "nginx" not in json.dumps([reveal(r.inputs) for r in ev.resources], default=str)
