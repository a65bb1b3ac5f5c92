"""End to end with the real Pulumi engine: the CLI `make engine` builds, a local file backend
and the passphrase secrets provider.

What runs for real: the CLI at its pinned version, its state and secrets handling, and
Python programs served to it over the CLI's built-in `client` runtime (the automation API's
inline language host). The pulumi-command provider and the Python language host binary are
not served by the Go module proxy (docs/testing.md, "The Pulumi engine"). The lab's test-only stand-in
for pulumi-command (tools/lab/command-standin) lives outside .engine/bin, so these stacks never
see it; the program runs with it on the lab's hosts in test_engine_lab.py.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi import automation as auto

from tests.support.engine import ENGINE, Engine
from tests.support.helpers import PROJECT, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.engine]

PKG = "github.com/pulumi/pulumi/pkg/v3"


def pinned_version() -> str:
    """The CLI version engine/pulumi/go.mod pins (the one `make engine` builds)."""
    mod = (PROJECT / "engine" / "pulumi" / "go.mod").read_text()
    found = re.search(rf"^(?:require)?\s*{re.escape(PKG)} (v\S+)", mod, re.M)
    assert found, f"engine/pulumi/go.mod requires no {PKG}"
    return found.group(1)


class Host(pulumi.ComponentResource):
    """A stand-in host: a component with a stash of its connection, whose key is a secret."""

    def __init__(self, name: str, address: str, key: pulumi.Output[str]) -> None:
        super().__init__("hybridai:lab:Host", name)
        conn = pulumi.Output.all(host=address, privateKey=key)
        pulumi.Stash(f"{name}-connection", input=conn, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def hosts_program() -> None:
    cfg = pulumi.Config()
    key = cfg.require_secret("sshPrivateKey")
    for host in cfg.require_object("hosts"):
        Host(host["name"], host["address"], key)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path, hosts_program)
    yield eng
    eng.stack.workspace.remove_stack(eng.stack.name, force=True)


HOSTS = [
    {"name": "vpn-hub", "address": "192.0.2.10"},
    {"name": "ws-1", "address": "192.0.2.21"},
    {"name": "ws-2", "address": "192.0.2.22"},
]


def configure(engine: Engine, hosts: list[dict[str, Any]], canary: str) -> None:
    engine.stack.set_config("sshPrivateKey", auto.ConfigValue(canary, secret=True))
    engine.stack.set_config("hosts", auto.ConfigValue(json.dumps(hosts)))


def replacements(go_mod: str) -> set[str]:
    """`replace` directives of a go.mod, one `old => new` string each (blocks and single lines)."""
    found: set[str] = set()
    block = False
    for raw in go_mod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line == "replace (":
            block = True
        elif block and line == ")":
            block = False
        elif block and "=>" in line:
            found.add(" ".join(line.split()))
        elif line.startswith("replace ") and "=>" in line:
            found.add(" ".join(line.removeprefix("replace ").split()))
    return found


def test_engine_module_repeats_upstream_replacements() -> None:
    """A replace applies only in the main module: ours must repeat every one of pkg/v3's that
    points at another module (those into its own repository are served as modules)."""
    if shutil.which("go") is None:
        unavailable("the Go toolchain is not installed (`make engine` needs it)")
    info = subprocess.run(
        ["go", "mod", "download", "-json", f"{PKG}@{pinned_version()}"],
        capture_output=True, text=True, check=True, cwd=PROJECT / "engine" / "pulumi", timeout=300,
    )
    upstream = replacements(Path(json.loads(info.stdout)["GoMod"]).read_text())
    needed = {r for r in upstream if not r.split("=>")[1].strip().startswith((".", "/"))}
    assert needed, "pkg/v3's go.mod has no replace to repeat: check this test's parsing"
    ours_mod = (PROJECT / "engine" / "pulumi" / "go.mod").read_text()
    ours = replacements(ours_mod)
    assert needed <= ours, f"engine/pulumi/go.mod lacks {needed - ours}"
    # pkg/v3 replaces sdk/v3 with the sdk of its own commit: ours requires that same version.
    assert any(r.startswith("github.com/pulumi/pulumi/sdk/v3 => ../") for r in upstream)
    assert f"github.com/pulumi/pulumi/sdk/v3 {pinned_version()}" in ours_mod


def test_cli_is_the_pinned_build() -> None:
    cli = ENGINE / "bin" / "pulumi"
    if not cli.exists():
        unavailable(f"the Pulumi CLI is not built ({cli}): run `make engine`")
    cmd = auto.PulumiCommand(root=str(ENGINE), skip_version_check=True)
    assert cmd.version is not None and f"v{cmd.version}" == pinned_version()


def test_preview_up_again_remove_one_destroy(engine: Engine) -> None:
    canary = f"-----BEGIN OPENSSH PRIVATE KEY----- canary-{secrets.token_hex(8)}"
    configure(engine, HOSTS, canary)
    per_host = 2  # the component and its stash
    total = 1 + per_host * len(HOSTS)  # and the stack itself

    assert f"+ {total} to create" in "\n".join(engine.preview())
    assert engine.urns() == set(), "preview changed the state"

    result, lines = engine.up()
    assert f"+ {total} created" in "\n".join(lines)
    assert result.summary.resource_changes == {"create": total}

    result, lines = engine.up()
    assert f"{total} unchanged" in "\n".join(lines)
    assert result.summary.resource_changes == {"same": total}

    before = engine.urns()
    configure(engine, HOSTS[:2], canary)  # one workstation removed
    result, lines = engine.up()
    assert f"- {per_host} deleted" in "\n".join(lines)
    assert result.summary.resource_changes == {"delete": per_host, "same": total - per_host}
    gone = before - engine.urns()
    assert {u.rsplit("::", 1)[1] for u in gone} == {"ws-2", "ws-2-connection"}

    state = engine.state_file()
    assert canary not in state and "canary-" not in state, "a secret is in the state file in plaintext"
    assert engine.passphrase not in state
    # the key is there, as a secret (sig.Secret's marker) encrypted by the passphrase provider
    assert re.search(r'"4dabf18193072939515e22adb298388d":\s*"1b47061264138c4ac30d75fd1eb44270"', state)
    assert '"ciphertext"' in state

    lines = engine.destroy()
    assert f"- {total - per_host} deleted" in "\n".join(lines)
    assert engine.urns() == set()


def test_program_reaches_the_missing_command_provider(tmp_path: Path) -> None:
    """The real engine runs this program on the dev stack's config until the first remote
    command, and stops there: the one piece the Go module proxy does not serve."""
    from stacks.program import main

    shutil.copy(PROJECT / "Pulumi.dev.yaml", tmp_path)  # the dev stack's config, as `make preview` uses it
    eng = Engine(tmp_path, main, stack="dev", project="hybrid-ai")
    eng.stack.set_config("sshPrivateKey", auto.ConfigValue("test-ssh-key", secret=True))
    with pytest.raises(auto.errors.CommandError):
        eng.run("preview")
    text = "\n".join(eng.log)
    pins = (PROJECT / "requirements.txt").read_text()
    command = re.search(r"^pulumi-command==(\S+)", pins, re.M)
    assert command, "requirements.txt pins no pulumi-command"
    missing = f"no resource plugin 'pulumi-resource-command' found in the workspace at version v{command.group(1)}"
    assert missing in text, text[-2000:]
    # the engine registered the program's components, the mesh among them, before it stopped
    assert re.search(r"hybridai:vpn:WireGuardMesh mesh\s+create", text), text[-2000:]
    print("\n".join(line for line in eng.log if "error:" in line)[:400], flush=True)


def seeded_program() -> None:
    """Hosts as above, plus per host a registration on the seed (the first host): the shape of
    MicroK8sCluster's register steps (each depends on the seed's install)."""
    cfg = pulumi.Config()
    key = cfg.require_secret("sshPrivateKey")
    hosts = cfg.require_object("hosts")
    seed = pulumi.Stash(f"{hosts[0]['name']}-install", input=hosts[0]["address"])
    for host in hosts:
        Host(host["name"], host["address"], key)
        pulumi.Stash(f"{host['name']}-register", input=pulumi.Output.all(seed.output, host["name"]))


def test_the_lost_seed_runbook_forgets_exactly_the_lost_hosts_resources(tmp_path: Path) -> None:
    """docs/operations.md, Losing the seed, step 3, on the real CLI: after the `up` whose deletes could not
    run, `preview --json` | tools/planned_deletes.py lists the lost host's resources (a
    component with its child among them), `state delete` takes them all at once in an order
    of its own, and the next `up` has nothing left to delete."""
    from tools.planned_deletes import planned_deletes

    eng = Engine(tmp_path, seeded_program)
    try:
        cps = [{"name": n, "address": a} for n, a in (("cp-1", "192.0.2.11"), ("cp-2", "192.0.2.12"), ("cp-3", "192.0.2.13"))]
        configure(eng, cps, "key")
        eng.up()
        before = eng.urns()
        configure(eng, cps[1:], "key")  # cp-1 (the seed) is lost; cp-2 is the seed now
        lost = {u for u in before if re.search(r"::cp-1(-\w+)*$", u)}
        assert len(lost) == 4  # cp-1, cp-1-connection, cp-1-install, cp-1-register
        # The `up` that updates the others but cannot delete the lost host's steps.
        eng.run("up", exclude=sorted(lost))
        assert lost <= eng.urns()
        listed = planned_deletes(json.loads(eng.run("preview", json=True).stdout), "cp-1")
        assert set(listed) == lost, listed
        deleted = eng.cli("state", "delete", "--yes", *listed)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        after = eng.urns()
        assert not lost & after and before - lost <= after
        result, _ = eng.up()
        assert "delete" not in (result.summary.resource_changes or {}), result.summary.resource_changes
    finally:
        eng.stack.workspace.remove_stack(eng.stack.name, force=True)


def lingering_program() -> Awaitable[None]:
    """Fails its operation at once (a provider whose plugin this machine lacks), and is still at
    work when the CLI has exited; then writes the file config `marker` names."""
    import asyncio

    import pulumi_random as random

    marker = Path(pulumi.Config().require("marker"))
    unplugged = random.RandomId("id", byte_length=4)

    async def busy() -> None:
        # The SDK stops the loop when a grpc error reaches its handler, which ends some programs
        # sooner and some not (a program busy off the loop, as the whole program building its
        # plan); this one is of the second kind whatever the timing.
        asyncio.get_running_loop().set_exception_handler(lambda *_: None)
        registered = asyncio.ensure_future(unplugged.urn.future())
        deadline = time.monotonic() + 20  # the CLI has failed on it and exited well before
        while not registered.done() and time.monotonic() < deadline:  # (its answer may never come)
            await asyncio.sleep(0.05)
        time.sleep(3)  # still at work
        marker.write_text("written after its operation")
    return busy()


def test_an_operations_program_ends_with_it(tmp_path: Path) -> None:
    """The automation API's language server stops with its CLI, the program it runs does not
    (docs/upstream.md): in the SDK's own process that program goes on after the failed operation,
    so an Engine runs each operation's program in a process that ends with it."""
    for linger in (True, False):
        marker = tmp_path / f"marker-{linger}"
        (tmp_path / str(linger)).mkdir()
        eng = Engine(tmp_path / str(linger), lingering_program)
        try:
            eng.stack.set_config("marker", auto.ConfigValue(str(marker)))
            with pytest.raises(auto.errors.CommandError) as failed:
                eng.run("up", linger=linger)
            assert "no resource plugin 'pulumi-resource-random' found" in str(failed.value), str(failed.value)[-1500:]
            if linger:  # as in the SDK's process: the program went on after `up` had returned
                assert marker.exists() and marker.stat().st_mtime > eng.returned_at + 1, "the SDK ended the program: see Engine.run"
            else:
                time.sleep(4)
                assert not marker.exists(), "the operation's program went on after it"
        finally:
            eng.stack.workspace.remove_stack(eng.stack.name, force=True)

