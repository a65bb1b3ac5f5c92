"""The pulumi-command stand-in (tools/lab/command-standin) under the real Pulumi CLI, against
OpenSSH sshd on lab hosts in network namespaces: each test encodes facts of pulumi-command
v1.2.1 listed in docs/upstream.md ("The pulumi-command stand-in").

Programs run through tests/support/standin_driver.py inside the lab's operator namespace (the
CLI, the inline program and the provider it starts share that namespace's loopback)."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import PROJECT, stop_processes, unavailable
from tools.lab.base import Host, Site, missing_requirements
from tools.lab.netlab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

CLI = PROJECT / ".engine" / "bin" / "pulumi"
STANDIN = PROJECT / ".engine" / "standin"
L = "/run/hybrid-ai-lab"  # each lab host's own folder (its labstate/ on this machine)


def require_built() -> None:
    if not CLI.exists():
        unavailable(f"the Pulumi CLI is not built ({CLI}): run `make engine`")
    if not (STANDIN / "pulumi-resource-command").exists():
        unavailable("the pulumi-command stand-in is not built: run `make command-standin`")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_built()
    why = missing_requirements()
    if why:
        unavailable(why)
    hosts = [
        # hub accepts the variables `environment` and the previous outputs are set in
        Host("hub", "192.0.2.10", public="203.0.113.10", sshd_options={"AcceptEnv": "LAB_* PULUMI_COMMAND_*"}),
        Host("ws-1", "192.0.2.21", lan="198.51.100.11", site="office-a"),  # the jump host; sshd as shipped
        # ws-2 is dialed at its LAN address, which the operator namespace has no route to
        Host("ws-2", "192.0.2.22", lan="198.51.100.12", site="office-a", sshd_options={"ListenAddress": "0.0.0.0"}),
    ]
    with Lab(tmp_path_factory.mktemp("standin-lab"), [Site("office-a", "198.51.100.0/26", "203.0.113.201")], hosts) as up:
        yield up


class Stack:
    """One stack of the driver's program on its own file backend."""

    def __init__(self, lab: Lab, root: Path) -> None:
        self.lab, self.root, self.passphrase = lab, root, secrets.token_hex(16)

    def run(self, op: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key),
               "standin": str(STANDIN), "op": op, "resources": resources}
        proc = subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.standin_driver"],
            input=json.dumps(job), capture_output=True, text=True, cwd=PROJECT, timeout=300, check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n$ pulumi {op}: {result['changes'] or result['error'][-300:]} ({result['elapsed']:.1f} s)", flush=True)
        return result

    def state_file(self) -> str:
        files = list((self.root / "state").rglob("lab.json"))
        assert len(files) == 1, files
        return files[0].read_text()

    def stored(self, name: str) -> dict[str, Any]:
        """A command's outputs as the state file holds them (secrets still encrypted)."""
        resources = json.loads(self.state_file())["checkpoint"]["latest"]["resources"]
        found: dict[str, Any] = next(r["outputs"] for r in resources if r["urn"].endswith(f"::{name}"))
        return found


def conn(lab: Lab, host: str, **extra: Any) -> dict[str, Any]:
    h = lab.hosts[host]
    return {"host": h.mgmt, "host_key": h.host_key, "dial_error_limit": 2, "per_dial_timeout": 5} | extra


def lines(lab: Lab, host: str, name: str) -> list[str]:
    path = lab.hosts[host].dir / "labstate" / name
    return path.read_text().splitlines() if path.exists() else []


def outputs(result: dict[str, Any], name: str) -> dict[str, Any]:
    out: dict[str, Any] = result["outputs"][name]
    return out


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


def test_lifecycle(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    canary = f"canary-{secrets.token_hex(8)}"
    first = Shape(canary)
    n = len(program(lab, first))

    (lab.hosts["hub"].dir / "labstate" / "canary").write_text(f"{canary}-on-host\n")
    loud = f"loud-{secrets.token_hex(8)}"
    (lab.hosts["hub"].dir / "labstate" / "loud").write_text(f"{loud}\n")
    preview = stack.run("preview", program(lab, first))
    assert preview["ok"], preview["error"]
    assert preview["changes"] == {"create": n + 1}
    assert not any(host_logs(lab).values()), "preview ran a command"
    assert canary not in "\n".join(preview["log"])

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
    # connection is secret as a whole (the schema's `secret`), so is the private key in it
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
    assert loud in "\n".join(up["log"]), up["log"]  # the default logs stdout

    again = stack.run("up", program(lab, first))
    before = host_logs(lab)
    assert again["ok"] and again["changes"] == {"same": n + 1}
    assert host_logs(lab) == before, "a second up ran a command"

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


# -- dials: host keys, budgets, the retry schedule, and what is not retried ----------------------


def test_a_wrong_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    wrong = conn(lab, "hub", host_key=lab.hosts["ws-1"].host_key, dial_error_limit=1)
    result = stack.run("up", [{"name": "pinned", "connection": wrong, "args": {"create": f"touch {L}/pinned"}}])
    assert not result["ok"]
    assert "after 1 failed attempts: ssh: handshake failed: ssh: host key mismatch" in result["error"]
    assert not (lab.hosts["hub"].dir / "labstate" / "pinned").exists()


def test_a_jump_host_has_its_own_pinned_key(lab: Lab, tmp_path: Path) -> None:
    ws2 = lab.hosts["ws-2"]
    target = {"host": ws2.lan, "host_key": ws2.host_key, "dial_error_limit": 1, "per_dial_timeout": 5}
    wrong_jump = conn(lab, "ws-1", host_key=lab.hosts["hub"].host_key, dial_error_limit=1)
    result = Stack(lab, tmp_path / "a").run("up", [{"name": "via", "connection": target | {"proxy": wrong_jump},
                                                    "args": {"create": f"touch {L}/via"}}])
    assert not result["ok"]
    assert "proxy: after 1 failed attempts: ssh: handshake failed: ssh: host key mismatch" in result["error"]
    # the jump host's key right, the target's wrong: refused as well
    wrong_target = target | {"host_key": lab.hosts["hub"].host_key, "proxy": conn(lab, "ws-1")}
    result = Stack(lab, tmp_path / "b").run("up", [{"name": "via", "connection": wrong_target, "args": {"create": f"touch {L}/via"}}])
    assert not result["ok"] and "host key mismatch" in result["error"]
    assert not (ws2.dir / "labstate" / "via").exists()


def test_an_unreachable_host_fails_within_the_dial_budget(lab: Lab, tmp_path: Path) -> None:
    """A host that drops SYNs: dialErrorLimit+1 dials of perDialTimeout each, plus the pauses.
    The baseline is a dial refused at once with no retry (the CLI's own time)."""
    hub = lab.hosts["hub"]
    refused = conn(lab, "hub", port=2201, dial_error_limit=0)
    base = Stack(lab, tmp_path / "base").run("up", [{"name": "down", "connection": refused, "args": {"create": "true"}}])
    assert not base["ok"] and "after 0 failed attempts: dial tcp 192.0.2.10:2201: connect: connection refused" in base["error"]
    lab.exec("hub", "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "2200", "-j", "DROP")
    try:
        limit, per_dial = 2, 2
        dropped = conn(lab, "hub", port=2200, dial_error_limit=limit, per_dial_timeout=per_dial)
        result = Stack(lab, tmp_path / "drop").run("up", [{"name": "down", "connection": dropped, "args": {"create": "true"}}])
    finally:
        lab.exec("hub", "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "2200", "-j", "DROP")
    assert not result["ok"]
    assert f"after {limit} failed attempts: dial tcp {hub.mgmt}:2200: i/o timeout" in result["error"]
    budget = (limit + 1) * per_dial + sum(0.1 * 1.5**i for i in range(limit))
    extra = result["elapsed"] - base["elapsed"]
    assert budget - 0.5 <= extra <= budget + 5, (extra, budget)


LISTENER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 2202)); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept(); print(time.monotonic(), flush=True); c.close()
"""


def test_failed_dials_pause_on_pulumis_retry_schedule(lab: Lab, tmp_path: Path) -> None:
    """A server that closes every connection: each dial fails its handshake at once; the gaps
    between the dials are retry.Until's defaults, 100 ms growing x1.5."""
    hub = lab.hosts["hub"]
    listener = subprocess.Popen(["ip", "netns", "exec", hub.ns, sys.executable, "-c", LISTENER, hub.mgmt],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        limit = 5
        closing = conn(lab, "hub", port=2202, dial_error_limit=limit)
        result = Stack(lab, tmp_path).run("up", [{"name": "closed", "connection": closing, "args": {"create": "true"}}])
    finally:
        stop_processes([listener])
    assert not result["ok"] and f"after {limit} failed attempts: ssh: handshake failed: EOF" in result["error"]
    assert listener.stdout is not None
    times = [float(t) for t in listener.stdout.read().split()]
    assert len(times) == limit + 1, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for i, gap in enumerate(gaps):
        pause = 0.1 * 1.5**i
        assert pause - 0.01 <= gap <= pause + 0.25, (i, gaps)


def test_a_dropped_session_is_an_error_and_not_retried(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    drop = f"echo ran >> {L}/dropped.log; kill -9 $PPID"  # the session's sshd process goes away
    result = stack.run("up", [{"name": "dropped", "connection": conn(lab, "hub"), "args": {"create": drop}}])
    assert not result["ok"]
    assert "remote command exited without exit status or exit signal" in result["error"]
    assert lines(lab, "hub", "dropped.log") == ["ran"]


def test_environment_the_server_refuses_is_an_error(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    spec = {"name": "env", "connection": conn(lab, "ws-1"), "args": {"create": f"touch {L}/env", "environment": {"LAB_X": "1"}}}
    result = stack.run("up", [spec])
    assert not result["ok"] and 'could not set environment variable "LAB_X"' in result["error"]
    assert not (lab.hosts["ws-1"].dir / "labstate" / "env").exists()
