"""The pulumi-command stand-in (tools/lab/command-standin) under the real Pulumi CLI, against
OpenSSH sshd on lab hosts in network namespaces: the schema it serves and a command's life
(create, no-op, update in place, replace, delete, destroy). Each test encodes facts of
pulumi-command v1.2.1 listed in docs/upstream.md ("pulumi-command v1.2.1 and its lab stand-in")."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import PROJECT
from tests.support.standin import CLI, STANDIN, L, Stack, conn, lines, outputs, require_built, standin_lab
from tools.lab.netlab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with standin_lab(tmp_path_factory.mktemp("standin-lab")) as up:
        yield up


# -- the schema the stand-in serves --------------------------------------------------------------

CONNECTION = {
    "agentSocketPath": {"type": "string"}, "dialErrorLimit": {"type": "integer", "default": 10},
    "host": {"type": "string"}, "hostKey": {"type": "string"}, "password": {"type": "string", "secret": True},
    "perDialTimeout": {"type": "integer", "default": 15}, "port": {"type": "number", "default": 22},
    "privateKey": {"type": "string", "secret": True}, "privateKeyPassword": {"type": "string", "secret": True},
    "user": {"type": "string", "default": "root"},
}
INPUTS = {
    "addPreviousOutputInEnv": {"type": "boolean"},
    "connection": {"$ref": "#/types/command:remote:Connection", "secret": True},
    "create": {"type": "string"}, "delete": {"type": "string"}, "update": {"type": "string"}, "stdin": {"type": "string"},
    "environment": {"type": "object", "additionalProperties": {"type": "string"}},
    "logging": {"$ref": "#/types/command:remote:Logging"},
    "triggers": {"type": "array", "items": {"$ref": "pulumi.json#/Any"}, "replaceOnChanges": True},
}


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def test_schema_is_upstreams_for_the_parts_used() -> None:
    """GetSchema serves remote.Command, Connection, ProxyConnection and Logging as pulumi-command
    v1.2.1's schema.json has them (descriptions aside), and the Python SDK 1.2.1 sends exactly
    these names."""
    require_built()
    got = subprocess.run([str(CLI), "package", "get-schema", str(STANDIN / "pulumi-resource-command")],
                         capture_output=True, text=True, check=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PULUMI_HOME": "/nonexistent-home", "PULUMI_SKIP_UPDATE_CHECK": "true"})
    schema = without_descriptions(json.loads(got.stdout))
    assert schema["name"] == "command" and schema["version"] == "1.2.1"  # the version the SDK asks for
    command = schema["resources"]["command:remote:Command"]
    assert command["inputProperties"] == INPUTS
    assert command["properties"] == INPUTS | {"stdout": {"type": "string"}, "stderr": {"type": "string"}}
    assert command["requiredInputs"] == ["connection"]
    assert sorted(command["required"]) == ["connection", "stderr", "stdout"]
    assert schema["types"]["command:remote:Connection"] == {
        "type": "object", "required": ["host"],
        "properties": CONNECTION | {"proxy": {"$ref": "#/types/command:remote:ProxyConnection"}},
    }
    assert schema["types"]["command:remote:ProxyConnection"] == {"type": "object", "required": ["host"], "properties": CONNECTION}
    logging = schema["types"]["command:remote:Logging"]
    assert [v["value"] for v in logging["enum"]] == ["stdout", "stderr", "stdoutAndStderr", "none"]
    # Only what the program uses is served: no other resource, no function.
    assert set(schema["resources"]) == {"command:remote:Command"} and not schema.get("functions")

    # The SDK's own view of the same names (its generated code is upstream's at 1.2.1).
    import pulumi_command
    from pulumi_command import remote

    sdk_dir = Path(pulumi_command.__file__).parent
    assert json.loads((sdk_dir / "pulumi-plugin.json").read_text()) == {"resource": True, "name": "command", "version": "1.2.1"}
    source = (sdk_dir / "remote" / "command.py").read_text()
    assert "'command:remote:Command'" in source and 'replace_on_changes=["triggers[*]"]' in source
    camel = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k) for k in remote.ConnectionArgs.__init__.__code__.co_varnames[1:]}
    assert camel == set(CONNECTION) | {"proxy"}


UPSTREAM_PINS = {  # pulumi-command v1.2.1's provider/go.mod
    "github.com/pulumi/pulumi-go-provider": "v1.3.0", "github.com/pulumi/pulumi/sdk/v3": "v3.224.0",
    "github.com/pulumi/pulumi/pkg/v3": "v3.224.0", "golang.org/x/crypto": "v0.48.0",
}


def test_the_standin_is_built_on_upstreams_library_versions() -> None:
    mod = (PROJECT / "tools" / "lab" / "command-standin" / "go.mod").read_text()
    pinned = dict(re.findall(r"^\s*(\S+) (v\S+)(?: // indirect)?$", mod, re.M))
    assert {m: pinned.get(m) for m in UPSTREAM_PINS} == UPSTREAM_PINS


# -- create, no-op, update in place, replace, delete ----------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What changes between the lifecycle's runs."""

    canary: str
    marker: str | None = "v1"
    who: str = "e1"
    trigger: str = "t1"
    per_dial: int = 5


def program(lab: Lab, shape: Shape) -> list[dict[str, Any]]:
    hub, ws1 = conn(lab, "hub"), conn(lab, "ws-1")
    marker, who, trigger, canary = shape.marker, shape.who, shape.trigger, shape.canary
    ws2 = lab.hosts["ws-2"]
    specs: list[dict[str, Any]] = [
        {"name": "upd", "connection": hub, "args": {
            "create": f"echo create >> {L}/upd.log; echo c",
            "update": f'echo "update prev=$PULUMI_COMMAND_STDOUT who=$LAB_WHO" >> {L}/upd.log; echo u',
            "environment": {"LAB_WHO": who}}},
        {"name": "trig", "connection": hub, "args": {
            "create": f"id=$(cat /proc/sys/kernel/random/uuid); echo create-$id >> {L}/trig.log; echo $id",
            "delete": f'echo "delete-$PULUMI_COMMAND_STDOUT" >> {L}/trig.log', "triggers": [trigger]}},
        {"name": "stdin", "connection": conn(lab, "hub", per_dial_timeout=shape.per_dial),
         "args": {"create": f"cat; echo ran >> {L}/stdin.log", "stdin": "from-stdin\n"}},
        # A secret made on the host (the canary file) and one sent on stdin (a secret input)
        {"name": "quiet", "connection": hub, "secret_output": True, "secret_stdin": True, "args": {
            "create": f"cat {L}/canary; cat >&2", "stdin": f"{canary}-stdin", "logging": "none"}},
        {"name": "loud", "connection": hub, "args": {"create": f"cat {L}/loud"}},  # logging: both (default)
        {"name": "plain", "connection": ws1, "args": {  # ws-1's sshd accepts no variables
            "create": f'echo "run {who} prev=$PULUMI_COMMAND_STDOUT" >> {L}/plain.log; echo {who}'}},
        {"name": "jumped", "connection": {
            "host": ws2.lan, "host_key": ws2.host_key, "dial_error_limit": 2, "per_dial_timeout": 5,
            "proxy": conn(lab, "ws-1")}, "args": {"create": f"echo jumped >> {L}/jumped.log; echo $SSH_CONNECTION"}},
    ]
    if marker is not None:
        specs.append({"name": "marker", "connection": hub, "args": {
            "create": f'echo "run {marker} prev=$PULUMI_COMMAND_STDOUT" >> {L}/marker.log; echo out-{marker}',
            "delete": f'echo "deleted prev=$PULUMI_COMMAND_STDOUT" >> {L}/marker.log'}})
    return specs


def host_logs(lab: Lab) -> dict[str, list[str]]:
    return {f"{h}/{f}": lines(lab, h, f) for h in lab.hosts for f in ("upd.log", "stdin.log", "trig.log", "plain.log", "jumped.log", "marker.log")}


def preview_then_create(lab: Lab, stack: Stack, first: Shape, loud: str) -> dict[str, Any]:
    """Preview runs nothing; up creates every command once, stdout with one newline trimmed."""
    n = len(program(lab, first))
    preview = stack.run("preview", program(lab, first))
    assert preview["ok"], preview["error"]
    assert preview["changes"] == {"create": n + 1}
    assert not any(host_logs(lab).values()), "preview ran a command"
    assert first.canary not in "\n".join(preview["log"])

    up = stack.run("up", program(lab, first))
    assert up["ok"], up["error"]
    assert up["changes"] == {"create": n + 1}
    assert lines(lab, "hub", "upd.log") == ["create"]
    assert lines(lab, "hub", "marker.log") == ["run v1 prev="]  # no previous output on create
    assert outputs(up, "marker")["stdout"] == "out-v1"  # one trailing newline trimmed
    assert outputs(up, "stdin")["stdout"] == "from-stdin"
    assert lines(lab, "ws-2", "jumped.log") == ["jumped"] and not lines(lab, "ws-1", "jumped.log")
    # ws-2 saw the connection come from the jump host's LAN address
    assert outputs(up, "jumped")["stdout"].split()[0] == lab.hosts["ws-1"].lan
    assert loud in "\n".join(up["log"]), up["log"]  # the default logs stdout
    return up


def secrets_kept(lab: Lab, stack: Stack, up: dict[str, Any], canary: str, loud: str) -> None:
    """additionalSecretOutputs keeps stdout/stderr secret; a secret stdin stays secret; the
    connection (private key and all) is secret as a whole; logging none shows nothing."""
    state = stack.state_file()
    assert f"{canary}-on-host" not in state, "a secret stdout is in the state file in plaintext"
    assert f"{canary}-stdin" not in state, "a secret stdin is in the state file in plaintext"
    assert lab.client_key.read_text().split("\n")[1] not in state
    quiet, loud_state = stack.stored("quiet"), stack.stored("loud")
    assert "ciphertext" in quiet["stdout"] and "ciphertext" in quiet["stderr"] and "ciphertext" in quiet["stdin"]
    assert loud_state["stdout"] == loud  # stdout is not secret unless the program says so
    assert "ciphertext" in loud_state["connection"]
    assert json.loads(outputs(up, "quiet")["stderr"]["plaintext"]) == f"{canary}-stdin"  # decrypted by the export
    assert canary not in "\n".join(up["log"])  # logging none: not in the CLI's output either


def test_lifecycle(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    canary = f"canary-{secrets.token_hex(8)}"
    first = Shape(canary)
    n = len(program(lab, first))
    (lab.hosts["hub"].dir / "labstate" / "canary").write_text(f"{canary}-on-host\n")
    loud = f"loud-{secrets.token_hex(8)}"
    (lab.hosts["hub"].dir / "labstate" / "loud").write_text(f"{loud}\n")
    up = preview_then_create(lab, stack, first, loud)
    secrets_kept(lab, stack, up, canary, loud)

    again = stack.run("up", program(lab, first))
    before = host_logs(lab)
    assert again["ok"] and again["changes"] == {"same": n + 1}
    assert host_logs(lab) == before, "a second up ran a command"
    # Read (refresh) hands the state back as it is: no host is asked, nothing changes.
    refreshed = stack.run("refresh", program(lab, first))
    assert refreshed["ok"] and refreshed["changes"] == {"same": n + 1}
    assert host_logs(lab) == before, "a refresh ran a command"

    # A changed `create` (no `update`) runs `create` again in place, the previous stdout in its
    # environment; a changed `environment` runs `update`, not `create`; so does any change in
    # `connection` (here perDialTimeout): the command runs again.
    second = replace(first, marker="v2", who="e2", per_dial=6)
    changed = stack.run("up", program(lab, second))
    assert changed["ok"], changed["error"]
    assert changed["changes"] == {"update": 4, "same": n + 1 - 4}
    assert lines(lab, "hub", "stdin.log") == ["ran", "ran"]
    assert lines(lab, "hub", "marker.log") == ["run v1 prev=", "run v2 prev=out-v1"]
    assert lines(lab, "hub", "upd.log") == ["create", "update prev=c who=e2"]
    assert outputs(changed, "marker")["stdout"] == "out-v2" and outputs(changed, "upd")["stdout"] == "u"
    # sshd without AcceptEnv: the previous output is not set, only warned about
    assert lines(lab, "ws-1", "plain.log") == ["run e1 prev=", "run e2 prev="]
    assert "Unable to set 'PULUMI_COMMAND_STDOUT'" in "\n".join(changed["log"])

    # A changed trigger replaces: the new one is created, then the old one deleted with its own stdout.
    old_id = outputs(changed, "trig")["stdout"]
    third = replace(second, trigger="t2")
    replaced = stack.run("up", program(lab, third))
    assert replaced["ok"] and replaced["changes"] == {"replace": 1, "same": n}
    new_id = outputs(replaced, "trig")["stdout"]
    assert lines(lab, "hub", "trig.log") == [f"create-{old_id}", f"create-{new_id}", f"delete-{old_id}"]

    # A removed command runs its `delete` from the state: old inputs, previous stdout.
    removed = stack.run("up", program(lab, replace(third, marker=None)))
    assert removed["ok"] and removed["changes"] == {"delete": 1, "same": n}
    assert lines(lab, "hub", "marker.log")[-1] == "deleted prev=out-v2"

    gone = stack.run("destroy", program(lab, replace(third, marker=None)))
    assert gone["ok"] and gone["changes"] == {"delete": n}
    assert lines(lab, "hub", "trig.log")[-1] == f"delete-{new_id}"
    assert gone["outputs"] == {}


def test_the_programs_commands_pass_the_standins_check_in_a_real_preview(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev stack's whole program under the real CLI with the stand-in on PATH: every
    remote command it registers passes Check (the program's argument shapes are the schema's)
    and is planned as a create, the CLI names the ambient plugin it loaded, and preview dials
    nothing (the dev stack's hosts are documentation addresses)."""
    from pulumi import automation as auto

    from stacks.program import main
    from tests.support.engine import Engine
    from tools.render.evaluate import evaluate_stack_file

    require_built()
    monkeypatch.setenv("PATH", f"{STANDIN}:/usr/bin:/bin")
    shutil.copy(PROJECT / "Pulumi.dev.yaml", tmp_path)
    eng = Engine(tmp_path, main, stack="dev", project="hybrid-ai")
    eng.stack.set_config("sshPrivateKey", auto.ConfigValue("test-ssh-key", secret=True))
    with contextlib.suppress(auto.errors.CommandError):  # no Kubernetes provider plugin here (yet): checked below
        eng.run("preview")
    text = "\n".join(eng.log)
    assert f"using pulumi-resource-command from $PATH at {STANDIN}/pulumi-resource-command" in text
    planned = re.findall(r"^\s*\+\s+command:remote:Command (\S+) create$", text, re.M)
    mock = {r.name for r in evaluate_stack_file(PROJECT, "dev").of_type("command:remote:Command")}
    print(f"\n{len(planned)} of the mock render's {len(mock)} remote commands planned by the real CLI", flush=True)
    assert planned and set(planned) <= mock and len(planned) == len(set(planned))
    assert not re.search(r"command:remote:Command \S+\s+.*error", text), text[-3000:]
    errors = {line.strip() for line in eng.log if "error:" in line}
    assert all("pulumi-resource-kubernetes" in e for e in errors), errors
