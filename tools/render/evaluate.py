"""Evaluate the program for one stack under Pulumi's mock runtime, in-process.

`evaluate()` returns every registration request whole (type, name, parent, dependencies,
inputs with their secret markers) and the stack outputs. It is the one path shared by
`make render`, the mock tests, the bench and the end-to-end lab, which reads the real
secret values from it in memory and never writes them out.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.config import set_all_config
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

from stacks.load import NAMESPACE, field_keys, secret_keys_of, validate
from tools.render import mockrun, stackfile
from tools.render.mocks import StackMocks

# The plan's types, importable from here as before they had a module of their own.
from tools.render.plan import Evaluation as Evaluation
from tools.render.plan import PlanChanges as PlanChanges
from tools.render.plan import Registration as Registration
from tools.render.plan import Secret as Secret

PROJECT = "hybrid-ai"
# The SDK sends a debug line per registration step to the engine; nobody reads them here.
_QUIET = logging.getLogger("hybrid-ai.render.engine")
_QUIET.setLevel(logging.WARNING)
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


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
                delete_before_replace=bool(request.deleteBeforeReplace),
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
    sections = field_keys()
    try:
        # The sections only, as load() reads them: an unknown key is load()'s to report, and
        # must not hide which secrets the sections name.
        raw = {k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v
               for k, v in config.items() if k.startswith(NAMESPACE + ":") and k not in secret and k.split(":", 1)[1] in sections}
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
    command_stdout: Mapping[str, str] | None = None, main: Callable[[], Any] | None = None,
) -> Evaluation:
    """Run the program for `stack` with the given config; raise ConfigError if it is invalid.

    Registrations are recorded in `into` when given, so a caller can see what (if anything)
    was registered before an error. `command_stdout` gives remote commands the output they
    really printed (the lab runs them for real), instead of made-up output. `main` runs in place
    of the program's `run` (stacks/kubernetes.py's layer alone)."""
    from stacks.program import run  # imported late: the program imports pulumi providers

    ev = into or Evaluation(stack)
    config = dict(config)
    secret_keys = set(secret_keys)
    if fill_missing_secrets:
        _missing_secret_placeholders(config, secret_keys, ev)
    ev.secret_values |= {config[k] for k in secret_keys if k in config}

    set_all_config(config, sorted(secret_keys))
    mocks = StackMocks(ev, command_stdout)

    async def program() -> None:
        ev.outputs = await _resolve((main or run)(), ev)

    # The program's warnings (pulumi.log.warn, which the CLI would show) become the render's.
    kept = _Warnings(ev)
    _QUIET.addHandler(kept)
    try:
        mockrun.run(program, mocks, project=PROJECT, stack=stack, monitor=RecordingMonitor(mocks), logger=_QUIET)
    finally:
        _QUIET.removeHandler(kept)
    return ev


class _Warnings(logging.Handler):
    def __init__(self, ev: Evaluation):
        super().__init__(logging.WARNING)
        self.ev = ev

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.ev.warnings.append(record.getMessage())
        else:  # as logging's last resort printed them before this handler was there
            sys.stderr.write(record.getMessage() + "\n")


def evaluate_stack_file(project_dir: Path, stack: str) -> Evaluation:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; stacks are Pulumi.<name>.yaml at the top level")
    config, secret = stackfile.stack_file_config(path)
    return evaluate(stack, config, secret, fill_missing_secrets=True)
