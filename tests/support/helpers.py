"""Shared test helpers: stack configs as plain dicts, and mock evaluation of them."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tools.render.evaluate import Evaluation, evaluate_raw, raw_stack_config

PROJECT = Path(__file__).resolve().parents[2]
NS = "hybrid-ai"
TEST_SECRETS = {"sshPrivateKey": "test-ssh-key"}


def stack_config(stack: str = "dev") -> dict[str, Any]:
    """The `config:` of Pulumi.<stack>.yaml with the namespace stripped, as plain data."""
    return raw_stack_config(PROJECT, stack)


def taint_gpu_host(raw: dict[str, Any], host: str, taints: list[dict[str, str]]) -> None:
    """Give a GPU host taints; GPU models' caches then need a storage class whose provisioner
    tolerates them (microk8s-hostpath's helper pod does not), so they get one."""
    next(h for h in raw["hosts"] if h["name"] == host)["taints"] = taints
    for m in raw["models"]:
        if m.get("placement") == "gpu" and "cache" in m:
            m["cache"] = {**m["cache"], "storageClass": "gpu-local"}


def evaluate_config(
    raw: dict[str, Any], secrets: dict[str, str] | None = None, stack: str = "test", into: Evaluation | None = None,
    command_stdout: dict[str, str] | None = None,
) -> Evaluation:
    """Evaluate the program under mocks for this config, with a test SSH key and a test value
    for each secret its models name (`secretEnv`) unless told otherwise."""
    if secrets is None:
        named = {key for m in raw.get("models") or [] if isinstance(m, dict) for key in (m.get("secretEnv") or {}).values()}
        secrets = TEST_SECRETS | {str(key): f"test-{key}" for key in sorted(named)}
    return evaluate_raw(raw, secrets, stack, into=into, command_stdout=command_stdout)


def deps_closure(ev: Evaluation, urn: str) -> set[str]:
    return ev.closure(urn)


def depth(ev: Evaluation) -> int:
    return ev.depth()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(why: str) -> NoReturn:
    """A test's prerequisite is missing: skip with the reason on a laptop, fail in CI."""
    if in_ci():
        pytest.fail(f"not available in CI: {why}")
    pytest.skip(why)


def stop_processes(procs: Iterable[subprocess.Popen[Any]], timeout: float = 5) -> None:
    """Terminate the processes a test started (all first, then wait for each), killing any
    that outlives `timeout`: a test ends only the processes it started, by their handles."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def command_lines_while(proc: subprocess.Popen[Any]) -> list[str]:
    """Every command line `ps` shows on the machine, sampled every 20 ms until `proc` ends.
    Other tests' processes show too: look for a value of the test's own (a fresh token)."""
    seen: list[str] = []
    while proc.poll() is None:
        seen += subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True, check=False).stdout.splitlines()
        time.sleep(0.02)
    return seen
