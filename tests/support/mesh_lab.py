"""The reference lab (tools/lab/reference.py: a hub, two cloud nodes, three NAT'd workstations in
two office sites) with the program's layers below the cluster applied by the real Pulumi CLI and
the pulumi-command stand-in (tests/support/program_driver.py, run in the lab's operator
namespace). `make lab-up` / `make lab-down` run this module; tests/vpn/test_e2e_mesh.py runs it
the same way and then attaches to the lab it left running.

up:   builds the lab, puts the NVIDIA stand-in on the workstations, runs `pulumi up` (its output
      printed) and says how to reach each host; the lab, the stack's folder and its passphrase
      are recorded in the state file (default build/lab.json, root only).
down: `pulumi destroy` of that stack (the hosts' scripts undo what `up` did), then stops every
      process the lab started (by the PIDs it recorded) and deletes its namespaces and folders.
"""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.engine_lab import place_standins
from tests.support.helpers import PROJECT
from tools.engine_stack import ENGINE, STANDIN
from tools.lab import saved
from tools.lab.base import missing_requirements, sh
from tools.lab.netlab import Lab
from tools.lab.reference import HOSTS, SITES, lab_config

STATE = PROJECT / "build" / "lab.json"


class MeshLab:
    """The reference lab and the program's stack on it (a file backend in the lab's folder)."""

    def __init__(self, lab: Lab, passphrase: str) -> None:
        self.lab, self.passphrase = lab, passphrase
        self.root = lab.root / "stack"

    def run(self, op: str, config: dict[str, Any], state: dict[str, Any] | None = None, timeout: float = 900) -> dict[str, Any]:
        """One operation of the program's layers below the cluster (`state`: a deployment imported first)."""
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key), "standin": str(STANDIN),
               "op": op, "config": config, "layers": "below-cluster", "state": state}
        proc = subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.program_driver"],
            input=json.dumps(job), capture_output=True, text=True, cwd=PROJECT, timeout=timeout, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"the program driver failed: {proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def state_text(self) -> str:
        """The stack's state file (the file backend's checkpoint)."""
        files = list((self.root / "state").rglob("lab.json"))
        assert len(files) == 1, files
        return files[0].read_text()

    def deployment(self) -> dict[str, Any]:
        """The stack's state as `pulumi stack export` gives it (secrets encrypted)."""
        found: dict[str, Any] = json.loads(self.state_text())["checkpoint"]["latest"]
        return found


@dataclass
class Session:
    stack: MeshLab
    up_output: str
    """What `make lab-up` printed: the CLI's output of the first `up`, then the lab's."""
    sysctls_before: dict[str, str]
    state: Path
    epoch: int = 0
    logs: list[str] = field(default_factory=list)
    """The CLI's output of every later operation."""

    @property
    def lab(self) -> Lab:
        return self.stack.lab

    def config(self, without: tuple[str, ...] = ()) -> dict[str, Any]:
        raw = lab_config(self.lab, without)
        if self.epoch:
            raw["vpn"] = {**raw.get("vpn", {}), "keyEpoch": self.epoch}
        return raw

    def up(self, config: dict[str, Any], state: dict[str, Any] | None = None, ok: bool = True) -> dict[str, Any]:
        """`pulumi up` of `config` (`state`: a deployment imported first); it must end `ok` (or fail)."""
        result = self.stack.run("up", config, state)
        self.logs += result["log"]
        print(f"\n$ pulumi up ({result['elapsed']:.1f} s)", *summary(result), sep="\n", flush=True)
        assert result["ok"] == ok, "\n".join(result["log"][-40:]) + result["error"][-3000:]
        return result

    def total(self) -> int:
        """The resources the CLI counts (the stack's own included, its default providers not)."""
        return len([r for r in self.stack.deployment()["resources"] if not r["type"].startswith("pulumi:providers:")])


def namespaces() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}


def lab_cli(action: str, state: Path) -> subprocess.CompletedProcess[str]:
    """`make lab-up` / `make lab-down` (this module, as make runs it), recording the lab in `state`."""
    return subprocess.run([sys.executable, "-m", "tests.support.mesh_lab", action, "--state", str(state)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=1200, check=False)


def summary(result: dict[str, Any]) -> list[str]:
    """The CLI's own `Resources:` block of an operation."""
    lines: list[str] = result["log"]
    starts = [i for i, line in enumerate(lines) if line.strip() == "Resources:"]
    block = []
    for line in lines[starts[-1]:] if starts else []:
        if not line.strip() or line.lstrip().startswith("Duration"):
            break
        block.append(line.rstrip())
    return block


def up(state: Path) -> int:
    why = missing_requirements() or (None if Path("/usr/sbin/nft").exists() else "missing tools: nft (apt-get install nftables)")
    if not why and not ((ENGINE / "bin" / "pulumi").exists() and (STANDIN / "pulumi-resource-command").exists()):
        why = "the Pulumi CLI or the pulumi-command stand-in is not built (make engine command-standin)"
    if why:
        print(f"lab: cannot run here: {why}", file=sys.stderr)
        return 1
    if state.exists():
        print(f"lab: a lab is already up ({state}); run make lab-down first", file=sys.stderr)
        return 1
    lab = Lab(Path(tempfile.mkdtemp(prefix="hybrid-ai-lab-")), copy.deepcopy(SITES), copy.deepcopy(HOSTS)).up()
    place_standins(lab)
    mesh = MeshLab(lab, secrets.token_hex(16))
    state.parent.mkdir(parents=True, exist_ok=True)
    saved.save(lab, state, {"passphrase": mesh.passphrase})
    result = mesh.run("up", lab_config(lab))
    print("\n".join(result["log"]), flush=True)
    if not result["ok"]:
        print(f"lab: pulumi up failed; the lab stays up to look into (make lab-down removes it):\n{result['error'][-3000:]}", file=sys.stderr)
        return 1
    print(f"lab: {len(lab.hosts)} hosts up, the program's layers below the cluster applied by the Pulumi CLI. Reach a host with:")
    print(f"  ip netns exec {lab.ns('op')} ssh -i {lab.client_key} -o UserKnownHostsFile={lab.known_hosts()} root@<address>")
    for h in lab.hosts.values():
        print(f"  {h.name:10} ssh {h.mgmt:12} namespace {h.ns}")
    print(f"The stack: PULUMI_BACKEND_URL=file://{mesh.root / 'state'}, its passphrase in {state}")
    print("Stop it with: make lab-down")
    return 0


def attach(state: Path) -> MeshLab:
    return MeshLab(saved.attach(state), json.loads(state.read_text())["passphrase"])


def down(state: Path) -> int:
    if not state.exists():
        print(f"lab: no lab is running (no {state})")
        return 0
    mesh = attach(state)
    status = 0
    try:
        result = mesh.run("destroy", lab_config(mesh.lab))
        print("\n".join(summary(result)) or result["error"][-3000:], flush=True)
        status = 0 if result["ok"] else 1
    except (RuntimeError, subprocess.TimeoutExpired) as err:  # the lab goes away all the same
        print(f"lab: pulumi destroy failed: {err}", file=sys.stderr)
        status = 1
    saved.down_saved(state)
    print("lab: stopped, namespaces and folders removed")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mesh_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--state", type=Path, default=STATE, help="where the running lab is recorded")
    args = parser.parse_args(argv)
    return up(args.state) if args.action == "up" else down(args.state)


if __name__ == "__main__":
    sys.exit(main())
