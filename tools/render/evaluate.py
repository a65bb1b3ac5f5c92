"""Evaluate the program for one stack under Pulumi's mock runtime, in-process.

`evaluate()` returns every registration request whole (type, name, parent, dependencies,
inputs with their secret markers) and the stack outputs. It is the one path shared by
`make render`, the mock tests, the bench and the end-to-end lab, which reads the real
secret values from it in memory and never writes them out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from stacks.load import NAMESPACE, secret_keys_of, validate
from tools.render import stackfile

PROJECT = "hybrid-ai"
# The SDK sends a debug line per registration step to the engine; nobody reads them here.
_QUIET = logging.getLogger("hybrid-ai.render.engine")
_QUIET.setLevel(logging.WARNING)
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret; `value` is real only inside this process."""

    value: Any


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    dependencies: list[str]
    """Explicit and Output-implied dependencies, plus the explicit provider it is managed by."""
    inputs: dict[str, Any]
    timeouts: dict[str, str] = field(default_factory=dict)
    """Custom create/update/delete timeouts from the resource options (not part of plan.json)."""


class PlanChanges(NamedTuple):
    added: set[str]
    removed: set[str]
    changed: set[str]
    """Resources in both plans whose inputs differ."""


@dataclass
class Evaluation:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_values: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def by_name(self, name: str) -> Registration:
        return next(r for r in self.resources if r.name == name)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def closure(self, urn: str) -> set[str]:
        """Every resource `urn` depends on, directly or through others."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        todo = list(by_urn[urn].dependencies)
        while todo:
            u = todo.pop()
            if u not in seen and u in by_urn:
                seen.add(u)
                todo += by_urn[u].dependencies
        return seen

    def changes(self, after: Evaluation) -> PlanChanges:
        """What `after` adds, removes, and gives other inputs, compared with this plan (by name)."""
        before_by_urn = {r.urn: r for r in self.resources}
        after_by_urn = {r.urn: r for r in after.resources}
        return PlanChanges(
            added={after_by_urn[u].name for u in after_by_urn.keys() - before_by_urn.keys()},
            removed={before_by_urn[u].name for u in before_by_urn.keys() - after_by_urn.keys()},
            changed={after_by_urn[u].name for u in after_by_urn.keys() & before_by_urn.keys()
                     if after_by_urn[u].inputs != before_by_urn[u].inputs},
        )

    def depth(self) -> int:
        """The longest dependency chain of the plan, in resources."""
        by_urn = {r.urn: r for r in self.resources}
        memo: dict[str, int] = {}

        def d(urn: str) -> int:
            if urn not in memo:
                memo[urn] = 1 + max((d(x) for x in by_urn[urn].dependencies if x in by_urn), default=0)
            return memo[urn]

        return max(d(u) for u in by_urn)


def _decode(value: Any) -> Any:
    """Protobuf JSON with Pulumi's secret markers -> plain values with `Secret` wrappers."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return Secret(_decode(value.get("value")))
        return {k: _decode(v) for k, v in value.items() if k != _special_sig_key}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value == UNKNOWN:
        return "[unknown]"
    return value


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


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps each RegisterResource request whole: the base of plan.json."""

    def __init__(self, mocks: StackMocks):
        super().__init__(mocks)
        self.stack_mocks = mocks
        self.evaluation = mocks.evaluation

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]  # untyped in the SDK
        if request.type != "pulumi:pulumi:Stack":
            # A provider reference is "<provider urn>::<id>"; the resource needs that provider.
            provider = [request.provider.rsplit("::", 1)[0]] if request.provider else []
            self.evaluation.resources.append(Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                dependencies=sorted(set(request.dependencies) | set(provider)),
                inputs=_decode(self.stack_mocks.inputs.pop((request.type, request.name), {})),
                timeouts={k: v for k in ("create", "update", "delete") if (v := getattr(request.customTimeouts, k, ""))},
            ))
        return response


def raw_stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The project's keys of Pulumi.<stack>.yaml as plain data, namespace stripped."""
    return stackfile.raw_stack_config(project_dir / f"Pulumi.{stack}.yaml")


def evaluate_raw(
    raw: Mapping[str, Any], secrets: Mapping[str, str], stack: str = "test", *,
    into: Evaluation | None = None, command_stdout: Mapping[str, str] | None = None,
) -> Evaluation:
    """Evaluate config given as plain data (keys without namespace); `secrets` are marked
    secret, as the CLI would mark `pulumi config set --secret` values."""
    config = {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    config |= {f"{NAMESPACE}:{k}": v for k, v in secrets.items()}
    return evaluate(stack, config, {f"{NAMESPACE}:{k}" for k in secrets}, into=into, command_stdout=command_stdout)


def _missing_secret_placeholders(config: dict[str, str], secret: set[str], ev: Evaluation) -> None:
    """Secrets the config names but the stack file lacks get placeholders, with a warning."""
    try:
        raw = {k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v
               for k, v in config.items() if k.startswith(NAMESPACE + ":") and k not in secret}
        cfg = validate(raw)
    except Exception:  # noqa: BLE001 - load() reports it properly during the run
        return
    for key in secret_keys_of(cfg):
        full = f"{NAMESPACE}:{key}"
        if full not in config:
            config[full] = stackfile.placeholder(full)
            secret.add(full)
            ev.warnings.append(f"{full} is not set in the stack; rendered with a placeholder (set it with `pulumi config set --secret {key} < FILE`)")


async def _resolve(value: Any, ev: Evaluation) -> Any:
    if isinstance(value, pulumi.Output):
        resolved = await _resolve(await value.future(), ev)
        return Secret(resolved) if await value.is_secret() else resolved
    if isinstance(value, Mapping):
        return {k: await _resolve(v, ev) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v, ev) for v in value]
    return value


def evaluate(
    stack: str, config: Mapping[str, str], secret_keys: set[str], *,
    fill_missing_secrets: bool = False, into: Evaluation | None = None,
    command_stdout: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run the program for `stack` with the given config; raise ConfigError if it is invalid.

    Registrations are recorded in `into` when given, so a caller can see what (if anything)
    was registered before an error. `command_stdout` gives remote commands the output they
    really printed (the lab runs them for real), instead of made-up output."""
    from stacks.program import run  # imported late: the program imports pulumi providers

    ev = into or Evaluation(stack)
    config = dict(config)
    secret_keys = set(secret_keys)
    if fill_missing_secrets:
        _missing_secret_placeholders(config, secret_keys, ev)
    ev.secret_values |= {config[k] for k in secret_keys if k in config}

    set_all_config(config, sorted(secret_keys))
    mocks = StackMocks(ev, command_stdout)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks), logger=_QUIET)

    async def program() -> None:
        ev.outputs = await _resolve(run(), ev)

    _sync_await(run_pulumi_func(program))
    return ev


def evaluate_stack_file(project_dir: Path, stack: str) -> Evaluation:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; stacks are Pulumi.<name>.yaml at the top level")
    config, secret = stackfile.stack_file_config(path)
    return evaluate(stack, config, secret, fill_missing_secrets=True)
