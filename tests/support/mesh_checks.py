"""What tests/vpn/test_e2e_mesh.py reads on the reference lab and in the real CLI's state and log:
`wg show`, the hosts' files, pings during a rotation, and the commands the CLI updated or deleted."""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.support.helpers import stop_processes
from tools.lab.netlab import Lab
from tools.lab.reference import VPN

COMMAND = "command:remote:Command"
LAB_LOGS = ("sshd.log", "calls.log", "wg-quick.log", "hostile")
REPLY = re.compile(r"^\[(?P<at>[0-9]+\.[0-9]+)\] [0-9]+ bytes from ", re.M)


def wg_show(lab: Lab, host: str, what: str) -> dict[str, str]:
    """`wg show wg0 <what>` as {public key: value}."""
    out = lab.exec(host, "wg", "show", "wg0", what).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def host_files(lab: Lab, host: str) -> dict[str, bytes]:
    """Every file the host's scripts can write (its mounted folders and /etc layer), but the lab's own logs."""
    root = lab.hosts[host].dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in LAB_LOGS and p.parent != root and p.relative_to(root).parts[2:3] != ("work",)}


def without_peers(config: bytes, names: set[str]) -> bytes:
    """The config with the [Peer] blocks of `names` taken out (trailing blank lines aside)."""
    head, *blocks = config.decode().split("\n[Peer]\n")
    kept = [b for b in blocks if not any(b.startswith(f"# {name}:") for name in names)]
    return "\n[Peer]\n".join([head, *kept]).rstrip("\n").encode()


def by_name(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state's command resources by name."""
    return {r["urn"].rsplit("::", 1)[1]: r for r in deployment.get("resources", []) if r["type"] == COMMAND}


def public_keys(deployment: dict[str, Any]) -> dict[str, str]:
    """Each host's WireGuard public key, as its key step printed it (the state's `stdout`)."""
    found = by_name(deployment)
    return {name.removeprefix("mesh-").removesuffix("-wg-key"): r["outputs"]["stdout"].strip()
            for name, r in found.items() if name.endswith("-wg-key")}


def scripts_changed(deployment: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The deployment as if the program's previous version had other scripts for the commands
    `names`: their recorded `create` differs from the program's, so the next `up` updates them in
    place, which runs their `create` again on the host (as a new version of a host script does)."""
    edited = copy.deepcopy(deployment)
    for name, resource in by_name(edited).items():
        if name in names:
            for part in ("inputs", "outputs"):
                create = resource[part]["create"]
                assert isinstance(create, str), f"{name}: its create is a secret; this edit needs a plain one"
                resource[part]["create"] = create + "\n# the previous version of this script"
    return edited


def changed(result: dict[str, Any], verb: str) -> list[str]:
    """The commands the CLI's log shows `verb` (updated, deleted, created) in that order."""
    return re.findall(rf"^\s*[-~+]+\s+{COMMAND} (\S+) {verb}\b", "\n".join(result["log"]), re.M)


class Pingers:
    """One `ping` per ordered pair, each in its host's namespace; stopped by PID."""

    def __init__(self, lab: Lab, out: Path):
        self.procs: dict[tuple[str, str], tuple[subprocess.Popen[bytes], Path]] = {}
        for a, b in itertools.permutations(lab.hosts, 2):
            log = out / f"ping-{a}-{b}.log"
            with log.open("wb") as sink:
                proc = subprocess.Popen(["ip", "netns", "exec", lab.hosts[a].ns, "ping", "-D", "-n", "-i", "0.2", "-W", "1", VPN[b]],
                                        stdout=sink, stderr=subprocess.STDOUT)
            self.procs[(a, b)] = (proc, log)

    def stop(self) -> None:
        stop_processes(proc for proc, _ in self.procs.values())

    def outages(self, start: float, end: float) -> dict[tuple[str, str], float]:
        """Per pair, the longest time in [start, end] without an answer."""
        worst = {}
        for pair, (_, log) in self.procs.items():
            answers = [float(m["at"]) for m in REPLY.finditer(log.read_text(errors="replace"))]
            points = [start, *[t for t in answers if start < t < end], end]
            worst[pair] = max(b - a for a, b in itertools.pairwise(points))
        return worst
