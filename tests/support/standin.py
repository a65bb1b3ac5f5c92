"""The pulumi-command stand-in's lab (tools/lab/command-standin), shared by
tests/stacks/test_command_standin*.py: three hosts running OpenSSH sshd in network namespaces,
and stacks of tests/support/standin_driver.py's program run through the real Pulumi CLI.

Programs run inside the lab's operator namespace (the CLI, the inline program and the provider
it starts share that namespace's loopback; the test process stays outside)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.helpers import PROJECT, unavailable
from tools.lab.base import Host, Site, missing_requirements
from tools.lab.netlab import Lab

CLI = PROJECT / ".engine" / "bin" / "pulumi"
STANDIN = PROJECT / ".engine" / "standin"
L = "/run/hybrid-ai-lab"  # each lab host's own folder (its labstate/ on this machine)


def require_built() -> None:
    if not CLI.exists():
        unavailable(f"the Pulumi CLI is not built ({CLI}): run `make engine`")
    if not (STANDIN / "pulumi-resource-command").exists():
        unavailable("the pulumi-command stand-in is not built: run `make command-standin`")


@contextmanager
def standin_lab(root: Path) -> Iterator[Lab]:
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
    with Lab(root, [Site("office-a", "198.51.100.0/26", "203.0.113.201")], hosts) as up:
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
        errors = [line.strip() for line in result["error"].splitlines() if "error:" in line]
        print(f"\n$ pulumi {op}: {result['changes'] or errors[-1:]} ({result['elapsed']:.1f} s)", flush=True)
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
    """A command's outputs as `stack export` shows them (secrets decrypted)."""
    out: dict[str, Any] = result["outputs"][name]
    return out
