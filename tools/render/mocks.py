"""Plausible, deterministic outputs for the providers the program uses, under Pulumi's mock
runtime: what each remote command would print on a real host, in the shape the program parses."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from tools.render.plan import Evaluation


def _fake_digest(*parts: str, size: int = 32) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()[:size]


class StackMocks(pulumi_mocks.Mocks):
    """Plausible, deterministic outputs for the providers the program uses."""

    # Inputs echoed back as outputs: the only ones the program reads from a resource.
    ECHOED = ("metadata", "name", "floatingIp")

    def __init__(self, evaluation: Evaluation, command_stdout: Mapping[str, str] | None = None):
        self.evaluation = evaluation
        self.command_stdout = dict(command_stdout or {})
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        """Deserialized inputs per (type, name), handed to the monitor (calls come from threads)."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = args.inputs
        # Return only outputs the program reads: echoing every input back would serialize
        # each script and manifest a second time.
        state = {k: args.inputs[k] for k in self.ECHOED if k in args.inputs}
        if args.custom:
            state.setdefault("name", args.name)  # what auto-naming would give, roughly
        digest = _fake_digest(args.typ, args.name)
        if args.typ == "command:remote:Command":
            stdout = self.command_stdout.get(args.name) or self._command_stdout(args.name, digest)
            state.update(stdout=stdout, stderr="")
        elif args.typ == "tls:index/privateKey:PrivateKey":
            private = f"-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK-{args.name}-{digest.hex()}\n-----END OPENSSH PRIVATE KEY-----\n"
            self.evaluation.secret_values.add(private)
            blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + digest
            state.update(
                private_key_openssh=pulumi.Output.secret(private),
                private_key_pem=pulumi.Output.secret(private),
                public_key_openssh="ssh-ed25519 " + _b64(blob) + "\n",
            )
        elif args.typ == "random:index/randomPassword:RandomPassword":
            password = digest.hex()[: int(args.inputs.get("length", 32))]
            self.evaluation.secret_values.add(password)
            state.update(result=pulumi.Output.secret(password))
        elif args.typ == "openstack:compute/instance:Instance":
            state.update(access_ip_v4=f"192.0.2.{64 + digest[0] % 128}")
        elif args.typ == "openstack:networking/floatingIp:FloatingIp":
            state.update(address=f"203.0.113.{64 + digest[0] % 128}")
        elif args.typ == "openstack:networking/floatingIpAssociate:FloatingIpAssociate":
            state.setdefault("floating_ip", state.get("floatingIp"))
        return f"{args.name}-id", state

    def _command_stdout(self, name: str, digest: bytes) -> str:
        if name.endswith("-reachable"):
            return "os=ubuntu\nos_version=22.04\narch=x86_64\ncpus=8\nmemory_mb=32000\n"
        if name.endswith("-wg-key"):
            return _b64(digest) + "\n"
        if name.endswith("-kubeconfig"):
            credential = f"MOCK-CLIENT-KEY-{digest.hex()}"
            self.evaluation.secret_values.add(credential)
            return f"apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-key-data: {credential}\n"
        if name.endswith("-gpu-check"):
            return "gpus=1\ndriver=535.183.01\n"
        if name.endswith("-enrollment"):
            # Netmaker's shape (logic/enrollmentkey.go Tokenize): base64 of {"server", "value"}.
            value = f"MOCK-ENROLLMENT-TOKEN-{digest.hex()[:16]}"
            token = base64.b64encode(json.dumps({"server": "api.nm.example.com", "value": value}).encode()).decode()
            self.evaluation.secret_values.update({value, token})
            return token + "\n"
        if name.endswith("-register"):  # a join token `microk8s add-node` generated for one node
            token = digest.hex()[:32]
            self.evaluation.secret_values.add(token)
            return token + "\n"
        if name.endswith("-ready"):
            return "node=" + name.rsplit("-", 1)[0].removeprefix("cluster-") + "\n"
        if name.endswith("-backup-schedule"):  # the control plane's backup key, made on it; only the public half printed
            blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + digest
            return "changed=none\nssh-ed25519 " + _b64(blob) + "\n"
        return "changed=none\n"

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "openstack:networking/getNetwork:getNetwork":
            return {"id": "external-network-id", "name": args.args.get("name")}, []
        return {}, []


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()
