"""One operation of a small `remote.Command` program on the real Pulumi CLI and the pulumi-command
stand-in (tools/lab/command-standin), run by tests/stacks/test_command_standin.py.

It runs inside the lab's operator namespace (`ip netns exec`), where the lab hosts' SSH
addresses are: the automation API serves an inline program to the CLI over 127.0.0.1, so the
program, the CLI and the provider the CLI starts must share one network namespace, and the
test process stays outside it. Job on stdin (JSON), result on stdout's last line (JSON).

Job: `root` (the stack's folder: state, PULUMI_HOME), `passphrase`, `key_file` (the SSH
private key, set as the secret config `sshPrivateKey`), `standin` (the folder holding
`pulumi-resource-command`, put on PATH), `op` (`up`, `preview`, `refresh` or `destroy`) and `resources`:
each `{"name", "connection": {ConnectionArgs fields, snake_case, "proxy": {...}}, "args":
{Command fields, snake_case}, "secret_output": bool, "secret_stdin": bool, "timeouts": {CustomTimeouts fields}}`.
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
from pulumi_command import remote

from tests.support.helpers import PROJECT


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
    root = Path(job["root"])
    (root / "state").mkdir(parents=True, exist_ok=True)
    os.environ.pop("SSH_AUTH_SOCK", None)  # the provider would offer an agent's keys too

    def program() -> None:
        key = pulumi.Config().require_secret("sshPrivateKey")
        for spec in job["resources"]:
            command(spec, key)

    env = {
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": job["passphrase"],
        "PULUMI_HOME": str(root / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The stand-in is found on PATH, as the CLI finds any ambient plugin; nothing else is.
        "PATH": f"{job['standin']}:/usr/bin:/bin",
    }
    settings = auto.ProjectSettings(name="standin-lab", runtime="python")
    ws = auto.LocalWorkspaceOptions(
        work_dir=str(root), project_settings=settings, env_vars=env,
        pulumi_command=auto.PulumiCommand(root=str(PROJECT / ".engine")),
    )
    stack = auto.create_or_select_stack("lab", project_name=settings.name, program=program, opts=ws)
    stack.set_config("sshPrivateKey", auto.ConfigValue(Path(job["key_file"]).read_text(), secret=True))
    log: list[str] = []
    result: dict[str, Any] = {"ok": True, "error": "", "changes": {}}
    start = time.monotonic()
    try:
        if job["op"] == "up":
            result["changes"] = stack.up(on_output=log.append, color="never").summary.resource_changes or {}
        elif job["op"] == "preview":
            result["changes"] = dict(stack.preview(on_output=log.append, color="never").change_summary)
        elif job["op"] == "refresh":
            result["changes"] = stack.refresh(on_output=log.append, color="never").summary.resource_changes or {}
        elif job["op"] == "destroy":
            result["changes"] = stack.destroy(on_output=log.append, color="never").summary.resource_changes or {}
        else:
            raise ValueError(f"unknown op {job['op']!r}")
    except auto.errors.CommandError as err:
        result |= {"ok": False, "error": str(err)}
    result["elapsed"] = time.monotonic() - start
    result["log"] = log
    deployment = stack.export_stack().deployment or {}
    result["outputs"] = {
        r["urn"].rsplit("::", 1)[1]: r.get("outputs", {}) for r in deployment.get("resources", []) if r["type"] == "command:remote:Command"
    }
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))), flush=True)
