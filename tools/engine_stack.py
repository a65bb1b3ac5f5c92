"""A stack of a Pulumi program on the CLI `make engine` builds (.engine/bin/pulumi), through the
automation API: a local file backend and PULUMI_HOME in a folder of the stack's own, a
passphrase, no plugin downloads and no update check. Resource plugins are those next to the CLI
(the pulumi-kubernetes provider `make engine` builds) and those in the folders given, put first
on PATH (the lab's pulumi-command stand-in, .engine/standin, for a lab stack only).

The program is inline: the CLI's built-in `client` runtime runs it in this process, served over
127.0.0.1 (no pulumi-language-python binary is needed). Used by `make preview` with the built CLI
(tools/preview_engine.py) and by the lab's drivers (tests/support/program_driver.py,
tests/support/standin_driver.py), which run inside a lab namespace.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pulumi import automation as auto

PROJECT_DIR = Path(__file__).resolve().parents[1]
ENGINE = PROJECT_DIR / ".engine"
STANDIN = ENGINE / "standin"
OPS = ("preview", "up", "refresh", "destroy")
PREVIEW_ENV = {"PULUMI_SKIP_CHECKPOINTS": "true"}
"""A preview writes no state, yet the CLI serializes the whole snapshot after every step unless
told to skip checkpoints; skipping leaves the preview's result as it is (docs/upstream.md)."""


def engine_env(root: Path, passphrase: str, plugin_dirs: Sequence[Path] = (), *, system_path: str = "/usr/bin:/bin") -> dict[str, str]:
    """The CLI's environment: its state and home under `root`, nothing of the machine's."""
    (root / "state").mkdir(parents=True, exist_ok=True)
    return {
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": passphrase,
        "PULUMI_HOME": str(root / "home"),  # no plugin or credential of the machine leaks in
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",  # what is here is what runs
        # Plugins in these folders are found on PATH, as the CLI finds any ambient plugin.
        "PATH": os.pathsep.join([*map(str, plugin_dirs), system_path]),
        # The Kubernetes provider's Helm caches and config stay under `root`; it gets its
        # cluster only from the program, never from the machine's kubeconfig.
        "HELM_CACHE_HOME": str(root / "helm" / "cache"), "HELM_CONFIG_HOME": str(root / "helm" / "config"),
        "HELM_DATA_HOME": str(root / "helm" / "data"), "KUBECONFIG": "/dev/null",
    }


def open_stack(
    root: Path, *, project: str, program: Callable[[], None], passphrase: str, plugin_dirs: Sequence[Path] = (),
    stack: str = "lab", config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
    namespace: str | None = None, cli_root: Path = ENGINE,
) -> auto.Stack:
    """Create or select `stack` of `program` on the file backend under `root`, with `config` (plain
    keys; a non-string value is set as JSON) and `secrets` set under `namespace` (default: the
    project's)."""
    os.environ.pop("SSH_AUTH_SOCK", None)  # pulumi-command would offer an agent's keys too
    settings = auto.ProjectSettings(name=project, runtime="python")
    ws = auto.LocalWorkspaceOptions(
        work_dir=str(root), project_settings=settings, env_vars=engine_env(root, passphrase, plugin_dirs),
        pulumi_command=auto.PulumiCommand(root=str(cli_root)),
    )
    opened = auto.create_or_select_stack(stack, project_name=project, program=program, opts=ws)
    prefix = f"{namespace or project}:"
    values = {prefix + k: auto.ConfigValue(v if isinstance(v, str) else json.dumps(v)) for k, v in (config or {}).items()}
    values |= {prefix + k: auto.ConfigValue(v, secret=True) for k, v in (secrets or {}).items()}
    if values:
        opened.set_all_config(values)
    return opened


def operate(stack: auto.Stack, op: str, *, echo: bool = False, **options: Any) -> dict[str, Any]:
    """Run `op` (preview, up, refresh or destroy). Result: `ok`, `error` (the CLI's, when it
    failed), `changes` (the CLI's summary: {"create": n, ...}), `elapsed` (s) and `log` (the CLI's
    output, line by line; printed as it comes with `echo`)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}")
    log: list[str] = []

    def out(line: str) -> None:
        log.append(line)
        if echo:
            print(line, flush=True)

    result: dict[str, Any] = {"ok": True, "error": "", "changes": {}}
    start = time.monotonic()
    try:
        if op == "preview":
            env = stack.workspace.env_vars
            stack.workspace.env_vars = {**env, **PREVIEW_ENV}  # for this preview only: `up` keeps its checkpoints
            try:
                result["changes"] = dict(stack.preview(on_output=out, color="never", **options).change_summary)
            finally:
                stack.workspace.env_vars = env
        else:
            done = getattr(stack, op)(on_output=out, color="never", **options)
            result["changes"] = done.summary.resource_changes or {}
    except auto.errors.CommandError as err:
        result |= {"ok": False, "error": str(err)}
    result["elapsed"] = time.monotonic() - start
    result["log"] = log
    return result


def deployment(stack: auto.Stack) -> list[dict[str, Any]]:
    """The resources of the stack's state (`stack export`; secrets encrypted)."""
    resources: list[dict[str, Any]] = (stack.export_stack().deployment or {}).get("resources", [])
    return resources
