"""A lab stack shaped like Pulumi.dev.yaml for the real engine (tests/stacks/test_engine_lab.py):
a hub and two cloud nodes with public addresses, and two workstations behind one office NAT,
ws-2 reached through ws-1 as its jump host (dialed at its LAN address, which the operator's
network has no route to). Its config is the dev stack's, with the lab's hosts put in.

The program runs through tests/support/program_driver.py inside the lab's operator namespace."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.helpers import PROJECT
from tests.support.nvidia_stubs import NVIDIA_STUBS
from tests.support.stubs import PROLOGUE
from tools.lab.base import Host, Site
from tools.lab.netlab import Lab
from tools.render.evaluate import raw_stack_config

STANDIN = PROJECT / ".engine" / "standin"
# Found by the CLI next to itself (the automation API puts the CLI's folder first on PATH).
KUBERNETES_PROVIDER = PROJECT / ".engine" / "bin" / "pulumi-resource-kubernetes"
OFFICE = Site("office", "198.51.100.0/26", "203.0.113.201")
VPN = {"vpn-hub": "100.64.0.1", "receipt": "100.64.0.2", "interface": "100.64.0.3", "ws-1": "100.64.1.1", "ws-2": "100.64.1.2"}
ROLES = {"vpn-hub": ["vpn-hub"], "receipt": ["control-plane", "ingress"], "interface": ["worker", "ingress"]}
JUMPS = {"ws-2": "ws-1"}


def lab_hosts() -> list[Host]:
    # Cloud hosts get the host firewall: their /etc is a private layer (its unit and rules
    # file never reach the machine).
    return [
        Host("vpn-hub", "192.0.2.10", public="203.0.113.10", overlays=("/etc",)),
        Host("receipt", "192.0.2.11", public="203.0.113.11", overlays=("/etc",)),
        Host("interface", "192.0.2.12", public="203.0.113.12", overlays=("/etc",)),
        Host("ws-1", "192.0.2.21", lan="198.51.100.11", site=OFFICE.name),
        Host("ws-2", "192.0.2.22", lan="198.51.100.12", site=OFFICE.name, sshd_options={"ListenAddress": "0.0.0.0"}),
    ]


def place_standins(lab: Lab) -> None:
    """The NVIDIA stand-in on each workstation's PATH (its /usr/local/sbin), state in its own
    /run/hybrid-ai-lab/nvidia: a loaded driver showing one GPU, as on a workstation whose driver
    and toolkit are already installed (installing them is tested under stubs, tests/cluster)."""
    for h in lab.hosts.values():
        if not h.name.startswith("ws-"):
            continue
        state = h.dir / "labstate" / "nvidia"
        (state / "installed").mkdir(parents=True, exist_ok=True)
        (state / "driver-loaded").write_text("1\n")
        stub = h.dir / "sbin" / "nvidia-smi"
        stub.write_text(PROLOGUE.replace("set -u\n", "set -u\nSTATE=/run/hybrid-ai-lab/nvidia\n", 1) + NVIDIA_STUBS["nvidia-smi"] + "\n")
        stub.chmod(0o755)


def lab_config(lab: Lab, **overrides: Any) -> dict[str, Any]:
    """The dev stack's config with the lab's hosts (their real host keys pinned)."""
    raw = raw_stack_config(PROJECT, "dev")
    raw["sites"] = [{"name": "cloud", "kind": "cloud"}, {"name": OFFICE.name, "kind": "on-prem", "nat": True, "lanCidr": OFFICE.lan_cidr}]
    hosts = []
    for h in lab.hosts.values():
        existing: dict[str, Any] = {"address": h.mgmt}
        # Cloud peers meet at their public addresses: no VPN endpoint points into the lab's
        # management network (tools/lab/netlab.py).
        existing |= {"publicAddress": h.public} if h.public else {"lanAddress": h.lan}
        ssh: dict[str, Any] = {"user": "root", "hostKey": h.host_key}
        if h.name in JUMPS:
            existing["address"] = h.lan
            ssh["jumpHost"] = JUMPS[h.name]
        entry: dict[str, Any] = {"name": h.name, "site": h.site, "roles": ROLES.get(h.name, ["worker"]), "existing": existing,
                                 "ssh": ssh, "vpnAddress": VPN[h.name]}
        if h.name.startswith("ws-"):
            entry["gpu"] = {"model": "rtx-3090", "count": 1}
            entry["nvidia"] = {"installDriver": False, "installToolkit": False}
        hosts.append(entry)
    raw["hosts"] = hosts
    raw["firewall"] = {"adminCidrs": ["192.0.2.0/24"]}
    return raw | overrides


class ProgramStack:
    """The program's stack of the lab on its own file backend."""

    def __init__(self, lab: Lab, root: Path) -> None:
        self.lab, self.root, self.passphrase = lab, root, secrets.token_hex(16)

    def run(self, op: str, config: dict[str, Any], layers: str = "below-cluster") -> dict[str, Any]:
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key),
               "standin": str(STANDIN), "op": op, "config": config, "layers": layers}
        proc = subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.program_driver"],
            input=json.dumps(job), capture_output=True, text=True, cwd=PROJECT, timeout=900, check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def state_file(self) -> str:
        files = list((self.root / "state").rglob("lab.json"))
        assert len(files) == 1, files
        return files[0].read_text()
