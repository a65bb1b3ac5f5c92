"""The public entry: ingress-nginx on the ingress nodes, and TLS (Let's Encrypt through
cert-manager, or a certificate you bring)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import Namespace, Secret
from pulumi_kubernetes.networking.v1 import NetworkPolicy

from components.hosts.ssh import after
from components.kit.helm import ChartSpec, install
from components.kit.kube import manifest, metadata, namespace_metadata, no_cloud_metadata

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


@dataclass
class PublicIngressArgs:
    controller: ChartSpec
    """The pinned ingress-nginx chart."""
    workload_namespace: pulumi.Input[str]
    """Where the TLS secret (and Certificate) live."""
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
    """Readiness of the ingress nodes: the controller is installed once they are Ready."""


class PublicIngress(pulumi.ComponentResource):
    """ingress-nginx on hostPorts 80/443 of the ingress nodes, with the stack's TLS."""

    tls_secret: str | None
    """Name of the TLS secret Ingresses reference, or None without TLS."""

    TLS_SECRET = "hybrid-ai-tls"

    def __init__(self, name: str, args: PublicIngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:PublicIngress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # hostPorts are outside every Pod Security level but privileged; only the controller runs here.
        ns = Namespace(f"{name}-namespace", metadata=namespace_metadata(args.controller.namespace, "privileged"), opts=child)
        NetworkPolicy(f"{name}-no-cloud-metadata", **no_cloud_metadata(ns.metadata.apply(lambda m: str(m["name"]))), opts=child)
        install(f"{name}-controller", args.controller, {}, after(ns.metadata.apply(lambda m: str(m["name"])), *args.nodes_ready), child)

        self.tls_secret = None if args.tls == "none" else self.TLS_SECRET
        if args.tls in ACME_SERVERS and args.cert_manager is not None:
            self._lets_encrypt(name, args, args.cert_manager, child)
        elif args.tls == "byo" and args.byo_pem is not None:
            parts: pulumi.Output[tuple[str, str]] = pulumi.Output.from_input(args.byo_pem).apply(split_pem)
            bundle: pulumi.Output[tuple[str, str]] = pulumi.Output.secret(parts)
            Secret(f"{name}-tls", metadata=metadata(self.TLS_SECRET, args.workload_namespace, "tls"), type="kubernetes.io/tls",
                   string_data={"tls.crt": bundle.apply(lambda b: b[0]), "tls.key": bundle.apply(lambda b: b[1])}, opts=child)
        self.register_outputs({"tlsSecret": self.tls_secret})

    def _lets_encrypt(self, name: str, args: PublicIngressArgs, chart: ChartSpec, opts: pulumi.ResourceOptions) -> None:
        ns = Namespace(f"{name}-cert-manager-namespace", metadata=namespace_metadata(chart.namespace, "baseline"), opts=opts)
        NetworkPolicy(f"{name}-cert-manager-no-cloud-metadata", **no_cloud_metadata(ns.metadata.apply(lambda m: str(m["name"]))), opts=opts)
        cert_manager = install(f"{name}-cert-manager", chart, {}, ns.metadata.apply(lambda m: str(m["name"])), opts)
        crds = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[cert_manager]))  # its CRDs must exist
        # The workload namespace denies by default; the controller must reach the solver.
        NetworkPolicy(f"{name}-acme-solver", metadata=metadata("acme-http01-solver", args.workload_namespace, "network-policy"),
                      spec=manifest({
                          "podSelector": {"matchLabels": SOLVER_LABEL},
                          "policyTypes": ["Ingress"],
                          "ingress": [{
                              "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.controller.namespace}}}],
                              "ports": [{"protocol": "TCP", "port": SOLVER_PORT}],
                          }],
                      }), opts=opts)
        issuer = CustomResource(f"{name}-issuer", api_version="cert-manager.io/v1", kind="ClusterIssuer",
                                metadata=metadata(args.tls, None, "tls"), spec={"acme": {
                                    "server": ACME_SERVERS[args.tls],
                                    "email": args.acme_email,
                                    "privateKeySecretRef": {"name": f"{args.tls}-account-key"},
                                    "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
                                }}, opts=crds)
        CustomResource(f"{name}-certificate", api_version="cert-manager.io/v1", kind="Certificate",
                       metadata=metadata(self.TLS_SECRET, args.workload_namespace, "tls"), spec={
                           "secretName": self.TLS_SECRET,
                           "dnsNames": [args.domain],
                           "issuerRef": {"kind": "ClusterIssuer", "name": issuer.metadata.apply(lambda m: m["name"])},  # type: ignore[attr-defined]
                       }, opts=crds)
