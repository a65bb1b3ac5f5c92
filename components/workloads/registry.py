"""An image pull secret for a private registry; the password stays a Pulumi secret."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import Secret

from components.kit.kube import metadata


@dataclass
class PullSecretArgs:
    namespace: pulumi.Input[str]
    """Namespace of the workloads."""
    server: str
    """Registry host."""
    username: str
    """Registry user."""
    password: pulumi.Input[str]
    """Password or token (a secret)."""


def docker_config(server: str, username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {server: {"username": username, "password": password, "auth": auth}}}, sort_keys=True)


class PullSecret(pulumi.ComponentResource):
    """A `kubernetes.io/dockerconfigjson` Secret workloads reference as imagePullSecrets."""

    name: pulumi.Output[str]
    """The Secret's name."""

    def __init__(self, name: str, args: PullSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:PullSecret", name, None, opts)
        plain: pulumi.Output[str] = pulumi.Output.from_input(args.password).apply(lambda p: docker_config(args.server, args.username, p))
        config: pulumi.Output[str] = pulumi.Output.secret(plain)
        secret = Secret(f"{name}-pull-secret", metadata=metadata("registry-credentials", args.namespace, "registry"),
                        type="kubernetes.io/dockerconfigjson", string_data={".dockerconfigjson": config},
                        opts=pulumi.ResourceOptions(parent=self))
        self.name = secret.metadata.apply(lambda m: str(m["name"]))
        self.register_outputs({"name": self.name})
