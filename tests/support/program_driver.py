"""One operation of the program itself (stacks/program.py, unchanged) on the real Pulumi CLI and
the pulumi-command stand-in, run by tests/stacks/test_engine_lab.py inside the lab's operator
namespace (as tests/support/standin_driver.py: the CLI serves the inline program over
127.0.0.1, so the program, the CLI and the providers it starts share one network namespace).

Job on stdin (JSON): `root` (the stack's folder: state, PULUMI_HOME), `passphrase`, `key_file`
(set as the secret `sshPrivateKey`), `standin` (the folder holding `pulumi-resource-command`,
put on PATH), `config` (the stack's keys without namespace, as Pulumi.<stack>.yaml holds
them), `op` (`preview`, `up` or `destroy`), `layers` (`all`: stacks/program.py's main;
`below-cluster`: the same program's hosts, mesh and firewall layers, stacks/build.py's
`build_below_cluster`, for where the Kubernetes layer cannot run). Result on stdout's last line (JSON).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pulumi
from pulumi import automation as auto

from tests.support.helpers import PROJECT

NAMESPACE = "hybrid-ai"


def below_cluster() -> None:
    from stacks.build import build_below_cluster
    from stacks.load import load

    built = build_below_cluster(load())
    assert built.mesh is not None
    pulumi.export("vpnInterface", built.mesh.interface)


def stack_of(job: dict[str, Any]) -> auto.Stack:
    from stacks.program import main

    program = main if job.get("layers", "all") == "all" else below_cluster
    root = Path(job["root"])
    (root / "state").mkdir(parents=True, exist_ok=True)
    os.environ.pop("SSH_AUTH_SOCK", None)  # the provider would offer an agent's keys too
    env = {
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": job["passphrase"],
        "PULUMI_HOME": str(root / "home"),  # no plugin or credential of the machine leaks in
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The stand-in is found on PATH, as the CLI finds any ambient plugin; nothing else is.
        "PATH": f"{job['standin']}:/usr/bin:/bin",
        # The Kubernetes provider's Helm caches and config stay in the stack's folder; it gets
        # its cluster only from the program.
        "HELM_CACHE_HOME": str(root / "helm" / "cache"), "HELM_CONFIG_HOME": str(root / "helm" / "config"),
        "HELM_DATA_HOME": str(root / "helm" / "data"), "KUBECONFIG": "/dev/null",
    }
    settings = auto.ProjectSettings(name=NAMESPACE, runtime="python")
    ws = auto.LocalWorkspaceOptions(
        work_dir=str(root), project_settings=settings, env_vars=env,
        pulumi_command=auto.PulumiCommand(root=str(PROJECT / ".engine")),
    )
    stack = auto.create_or_select_stack("lab", project_name=NAMESPACE, program=program, opts=ws)
    config = {f"{NAMESPACE}:{k}": auto.ConfigValue(v if isinstance(v, str) else json.dumps(v)) for k, v in job["config"].items()}
    config[f"{NAMESPACE}:sshPrivateKey"] = auto.ConfigValue(Path(job["key_file"]).read_text(), secret=True)
    stack.set_all_config(config)
    return stack


def run(job: dict[str, Any]) -> dict[str, Any]:
    stack = stack_of(job)
    log: list[str] = []
    result: dict[str, Any] = {"ok": True, "error": "", "changes": {}}
    start = time.monotonic()
    try:
        if job["op"] == "up":
            result["changes"] = stack.up(on_output=log.append, color="never").summary.resource_changes or {}
        elif job["op"] == "preview":
            result["changes"] = dict(stack.preview(on_output=log.append, color="never").change_summary)
        elif job["op"] == "destroy":
            result["changes"] = stack.destroy(on_output=log.append, color="never").summary.resource_changes or {}
        else:
            raise ValueError(f"unknown op {job['op']!r}")
    except auto.errors.CommandError as err:
        result |= {"ok": False, "error": str(err)}
    result["elapsed"] = time.monotonic() - start
    result["log"] = log
    deployment = stack.export_stack().deployment or {}
    result["resources"] = [{"urn": r["urn"], "type": r["type"]} for r in deployment.get("resources", [])]
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))), flush=True)
