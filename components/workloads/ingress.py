"""The public entry through the Gateway API: its CRDs (standard channel, pinned), Traefik on the
ingress nodes' hostPorts 80/443, one GatewayClass and one Gateway in the workload namespace
(models attach their HTTPRoutes to it), and TLS (Let's Encrypt through cert-manager's
Gateway HTTP-01 solver, or a certificate you bring)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import Secret
from pulumi_kubernetes.networking.v1 import NetworkPolicy
from pulumi_kubernetes.yaml.v2 import ConfigFile

from components.kit.helm import ChartSpec, install
from components.kit.kube import CLOUD_NODES, INGRESS_NODES, manifest, metadata
from components.kit.outputs import after
from components.workloads.namespace import open_namespace

GATEWAY_API = "gateway.networking.k8s.io/v1"
# Traefik's Gateway controller (traefik-helm-chart v41.3.0, templates/gatewayclass.yaml).
TRAEFIK_CONTROLLER = "traefik.io/gateway-controller"
# A Gateway listener's port is the Traefik entry point's port inside the pod (chart v41.3.0,
# templates/gateway.yaml fails on any other); the hostPorts 80/443 lead to them.
ENTRY_POINTS = {"http": 8000, "https": 8443}

# cert-manager's HTTP-01 solver pod (v1.16.2, pkg/issuer/acme/http/pod.go): created in the
# Certificate's namespace, labelled acme.cert-manager.io/http01-solver=true, listening on 8089.
SOLVER_LABEL = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_PORT = 8089

ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?\n-----END \1-----\n?", re.S)


def split_pem(pem: str) -> tuple[str, str]:
    """(certificate chain, private key) from one PEM bundle."""
    blocks = [(m.group(1), m.group(0).rstrip("\n") + "\n") for m in PEM_BLOCK.finditer(pem)]
    certs = "".join(text for kind, text in blocks if kind == "CERTIFICATE")
    keys = [text for kind, text in blocks if kind.endswith("PRIVATE KEY")]
    if not certs or len(keys) != 1:
        raise ValueError("the TLS bundle needs the certificate chain and exactly one private key, in PEM")
    return certs, keys[0]


def cert_manager_values() -> dict[str, Any]:
    """Every cert-manager pod on the cloud nodes: the controller reads and writes every Secret and
    creates the solver pods, the cainjector reads every Secret and rewrites webhooks and CRDs, the
    webhook admits cert-manager's objects (chart v1.16.2 `templates/rbac.yaml`, `cainjector-rbac.yaml`,
    `webhook-rbac.yaml`); the startupapicheck Job goes with them."""
    cloud = {"nodeSelector": dict(CLOUD_NODES)}
    return {**cloud, "webhook": cloud, "cainjector": cloud, "startupapicheck": cloud}


@dataclass
class PublicIngressArgs:
    controller: ChartSpec
    """The pinned Traefik chart."""
    gateway_api_crds: str
    """URL of the pinned Gateway API CRD bundle (standard channel)."""
    workload_namespace: pulumi.Input[str]
    """Where the Gateway, the TLS secret (and Certificate) live."""
    tls: Literal["letsencrypt", "letsencrypt-staging", "byo", "none"]
    """TLS mode."""
    domain: str | None = None
    """Public host name."""
    acme_email: str | None = None
    """Let's Encrypt account e-mail."""
    cert_manager: ChartSpec | None = None
    """The pinned cert-manager chart (Let's Encrypt modes)."""
    byo_pem: pulumi.Input[str] | None = None
    """Certificate chain and key, PEM (tls: byo); a secret."""
    nodes_ready: Sequence[pulumi.Output[Any]] = ()
    """Resolve once the ingress nodes (cloud) are Ready and labelled: Traefik and cert-manager go there."""


class PublicIngress(pulumi.ComponentResource):
    """Traefik on hostPorts 80/443 of the ingress nodes, the Gateway, and the stack's TLS."""

    tls_secret: str | None
    """Name of the TLS secret the HTTPS listener serves, or None without TLS."""
    gateway: pulumi.Output[str]
    """Name of the Gateway (in the workload namespace); resolves once it exists."""
    listener: str
    """The listener public routes attach to: "https" with TLS, else "http"."""
    data_plane_namespace: str
    """Where the Traefik pods run (network policies let them in)."""

    TLS_SECRET = "hybrid-ai-tls"
    GATEWAY = "public"
    CLASS = "traefik"

    # The type token predates the Gateway: kept so that cert-manager, the issuer and the
    # Certificate (children, whose URNs carry it) are updated in place, not replaced.
    def __init__(self, name: str, args: PublicIngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:PublicIngress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.tls_secret = None if args.tls == "none" else self.TLS_SECRET
        self.listener = "http" if self.tls_secret is None else "https"
        self.data_plane_namespace = args.controller.namespace
        crds = ConfigFile(f"{name}-gateway-api-crds", file=args.gateway_api_crds, opts=child)
        after_crds = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[crds]))  # no Output carries them
        # hostPorts are outside every Pod Security level but privileged; only Traefik runs here.
        traefik_namespace = open_namespace(f"{name}-traefik", args.controller.namespace, "privileged", child)
        # Its service account reads every Secret (the Gateway provider's ClusterRole): ingress nodes at cloud sites only.
        install(f"{name}-traefik", args.controller, {"nodeSelector": dict(INGRESS_NODES)}, after(traefik_namespace, *args.nodes_ready), after_crds)
        self.gateway = self._gateway(name, args, after_crds)
        if args.tls in ACME_SERVERS and args.cert_manager is not None:
            self._lets_encrypt(name, args, args.cert_manager, crds, child)
        elif args.tls == "byo" and args.byo_pem is not None:
            parts: pulumi.Output[tuple[str, str]] = pulumi.Output.from_input(args.byo_pem).apply(split_pem)
            bundle: pulumi.Output[tuple[str, str]] = pulumi.Output.secret(parts)
            Secret(f"{name}-tls", metadata=metadata(self.TLS_SECRET, args.workload_namespace, "tls"), type="kubernetes.io/tls",
                   string_data={"tls.crt": bundle.apply(lambda b: b[0]), "tls.key": bundle.apply(lambda b: b[1])}, opts=child)
        self.register_outputs({"tlsSecret": self.tls_secret, "gateway": self.gateway})

    def _gateway(self, name: str, args: PublicIngressArgs, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        """The GatewayClass, the Gateway (HTTP, and HTTPS with TLS), and with TLS the redirect
        of plain HTTP to HTTPS (cert-manager's challenge routes match exact paths, so win)."""
        gateway_class = CustomResource(f"{name}-gateway-class", api_version=GATEWAY_API, kind="GatewayClass",
                                       metadata=metadata(self.CLASS, None, "gateway"),
                                       spec={"controllerName": TRAEFIK_CONTROLLER}, opts=opts)
        host = {"hostname": args.domain} if args.domain else {}
        same = {"namespaces": {"from": "Same"}}
        listeners: list[dict[str, Any]] = [{"name": "http", "port": ENTRY_POINTS["http"], "protocol": "HTTP", **host, "allowedRoutes": same}]
        if self.tls_secret is not None:
            listeners.append({"name": "https", "port": ENTRY_POINTS["https"], "protocol": "HTTPS", **host, "allowedRoutes": same,
                              "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": self.tls_secret}]}})
        gateway = CustomResource(f"{name}-gateway", api_version=GATEWAY_API, kind="Gateway",
                                 metadata=metadata(self.GATEWAY, args.workload_namespace, "gateway"), spec={
                                     "gatewayClassName": gateway_class.metadata.apply(lambda m: m["name"]),  # type: ignore[attr-defined]
                                     "listeners": listeners,
                                 }, opts=opts)
        gateway_name: pulumi.Output[str] = gateway.metadata.apply(lambda m: str(m["name"]))  # type: ignore[attr-defined]
        if self.tls_secret is not None:
            CustomResource(f"{name}-https-redirect", api_version=GATEWAY_API, kind="HTTPRoute",
                           metadata=metadata("https-redirect", args.workload_namespace, "gateway"), spec={
                               "parentRefs": [{"name": gateway_name, "sectionName": "http"}],
                               "rules": [{"filters": [{"type": "RequestRedirect",
                                                       "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
                           }, opts=opts)
        return gateway_name

    def _lets_encrypt(self, name: str, args: PublicIngressArgs, chart: ChartSpec, crds: pulumi.Resource, opts: pulumi.ResourceOptions) -> None:
        namespace = open_namespace(f"{name}-cert-manager", chart.namespace, "baseline", opts)
        # With the Gateway API on, cert-manager's controller exits until the CRDs exist.
        cert_manager = install(f"{name}-cert-manager", chart, cert_manager_values(), after(namespace, *args.nodes_ready),
                               pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[crds])))
        after_chart = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[cert_manager]))  # its CRDs must exist
        # The workload namespace denies by default; the Gateway's data plane must reach the solver.
        NetworkPolicy(f"{name}-acme-solver", metadata=metadata("acme-http01-solver", args.workload_namespace, "network-policy"),
                      spec=manifest({
                          "podSelector": {"matchLabels": SOLVER_LABEL},
                          "policyTypes": ["Ingress"],
                          "ingress": [{
                              "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.controller.namespace}}}],
                              "ports": [{"protocol": "TCP", "port": SOLVER_PORT}],
                          }],
                      }), opts=opts)
        # cert-manager creates the challenge's HTTPRoute in the Certificate's namespace,
        # attached to the plain-HTTP listener (Let's Encrypt asks on port 80).
        parent = {"name": self.gateway, "namespace": args.workload_namespace, "kind": "Gateway", "sectionName": "http"}
        issuer = CustomResource(f"{name}-issuer", api_version="cert-manager.io/v1", kind="ClusterIssuer",
                                metadata=metadata(args.tls, None, "tls"), spec={"acme": {
                                    "server": ACME_SERVERS[args.tls],
                                    "email": args.acme_email,
                                    "privateKeySecretRef": {"name": f"{args.tls}-account-key"},
                                    "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [parent]}}}],
                                }}, opts=after_chart)
        CustomResource(f"{name}-certificate", api_version="cert-manager.io/v1", kind="Certificate",
                       metadata=metadata(self.TLS_SECRET, args.workload_namespace, "tls"), spec={
                           "secretName": self.TLS_SECRET,
                           "dnsNames": [args.domain],
                           "issuerRef": {"kind": "ClusterIssuer", "name": issuer.metadata.apply(lambda m: m["name"])},  # type: ignore[attr-defined]
                       }, opts=after_chart)
