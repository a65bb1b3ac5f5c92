"""One operation of the program itself (stacks/program.py, unchanged) on the real Pulumi CLI and
the pulumi-command stand-in, run inside a lab's operator namespace by tests/stacks/test_engine_lab.py
and tests/support/mesh_lab.py (`make lab-up`, the mesh tests): the CLI serves the inline program
over 127.0.0.1, so the program, the CLI and the providers it starts share one network namespace
(tools/engine_stack.py opens the stack and runs the operation).

Job on stdin (JSON): `root` (the stack's folder: state, PULUMI_HOME), `passphrase`, `key_file`
(set as the secret `sshPrivateKey`), `standin` (the folder holding `pulumi-resource-command`,
put on PATH), `config` (the stack's keys without namespace, as Pulumi.<stack>.yaml holds
them), `op` (`preview`, `up`, `refresh` or `destroy`), `layers` (`all`: stacks/program.py's main;
`below-cluster`: the same program's hosts, mesh and firewall layers, stacks/build.py's
`build_below_cluster`, for where the Kubernetes layer cannot run), and optionally `state`
(a deployment to import before the operation, as `pulumi stack import` does). Result on
stdout's last line (JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi import automation as auto

from tools.engine_stack import deployment, open_stack, operate

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
    return open_stack(
        Path(job["root"]), project=NAMESPACE, program=program, passphrase=job["passphrase"], plugin_dirs=[Path(job["standin"])],
        config=job["config"], secrets={"sshPrivateKey": Path(job["key_file"]).read_text()},
    )


def run(job: dict[str, Any]) -> dict[str, Any]:
    stack = stack_of(job)
    if job.get("state") is not None:
        stack.import_stack(auto.Deployment(version=3, deployment=job["state"]))
    result = operate(stack, job["op"])
    result["resources"] = [{"urn": r["urn"], "type": r["type"]} for r in deployment(stack)]
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))), flush=True)
