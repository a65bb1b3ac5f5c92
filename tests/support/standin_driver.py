"""One operation of a small `remote.Command` program on the real Pulumi CLI and the pulumi-command
stand-in (tools/lab/command-standin), run by tests/stacks/test_command_standin.py.

It runs inside the lab's operator namespace (`ip netns exec`), where the lab hosts' SSH
addresses are: the automation API serves an inline program to the CLI over 127.0.0.1, so the
program, the CLI and the provider the CLI starts must share one network namespace, and the
test process stays outside it (tools/engine_stack.py opens the stack and runs the operation).
Job on stdin (JSON), result on stdout's last line (JSON).

Job: `root` (the stack's folder: state, PULUMI_HOME), `passphrase`, `key_file` (the SSH
private key, set as the secret config `sshPrivateKey`), `standin` (the folder holding
`pulumi-resource-command`, put on PATH), `op` (`up`, `preview`, `refresh` or `destroy`) and `resources`:
each `{"name", "connection": {ConnectionArgs fields, snake_case, "proxy": {...}}, "args":
{Command fields, snake_case}, "secret_output": bool, "secret_stdin": bool, "timeouts": {CustomTimeouts fields}}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import remote

from tools.engine_stack import deployment, open_stack, operate


def command(spec: dict[str, Any], key: pulumi.Output[str]) -> remote.Command:
    conn = dict(spec["connection"])
    proxy = conn.pop("proxy", None)
    args = dict(spec.get("args", {}))
    if spec.get("secret_stdin"):
        args["stdin"] = pulumi.Output.secret(args["stdin"])
    if "logging" in args:
        args["logging"] = remote.Logging(args["logging"])
    return remote.Command(
        spec["name"],
        connection=remote.ConnectionArgs(
            **conn, private_key=key, proxy=None if proxy is None else remote.ProxyConnectionArgs(**proxy, private_key=key),
        ),
        **args,
        opts=pulumi.ResourceOptions(
            additional_secret_outputs=["stdout", "stderr"] if spec.get("secret_output") else None,
            custom_timeouts=pulumi.CustomTimeouts(**spec["timeouts"]) if "timeouts" in spec else None,
        ),
    )


def run(job: dict[str, Any]) -> dict[str, Any]:
    def program() -> None:
        key = pulumi.Config().require_secret("sshPrivateKey")
        for spec in job["resources"]:
            command(spec, key)

    stack = open_stack(
        Path(job["root"]), project="standin-lab", program=program, passphrase=job["passphrase"],
        plugin_dirs=[Path(job["standin"])], secrets={"sshPrivateKey": Path(job["key_file"]).read_text()},
    )
    result = operate(stack, job["op"])
    result["outputs"] = {
        r["urn"].rsplit("::", 1)[1]: r.get("outputs", {}) for r in deployment(stack) if r["type"] == "command:remote:Command"
    }
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))), flush=True)
