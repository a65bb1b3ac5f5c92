"""A lab stack shaped like Pulumi.dev.yaml for the real engine (tests/stacks/test_engine_lab.py):
a hub and two cloud nodes with public addresses, and workstations behind one office NAT (two
by default), each after the first reached through ws-1 as its jump host (dialed at its LAN
address, which the operator's network has no route to). Its config is the dev stack's, with the
lab's hosts put in.

`ClusterLab` adds what the cluster layer needs: the lab's real control plane (kube-apiserver,
etcd, controller-manager, scheduler, kwok: tools/lab/kube.py) in the control-plane host's own
network namespace on MicroK8s' port, the cluster-agent stand-in beside it
(tests/support/microk8s_agent.py), the MicroK8s and NVIDIA stand-ins on every host's PATH
(tests/support/microk8s_standin.py), the chart mirror in the operator's namespace, and an
operator leg on the internet segment (the kubeconfig names the control plane's public address).

The program runs through tests/support/program_driver.py inside the lab's operator namespace.
From a script (the whole program, `up`):

    with ClusterLab(Path(tmp), workstations=2) as cl:
        result = ProgramStack(cl.lab, Path(tmp) / "stack").run("up", cl.config(), layers="all")
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.engine import stop_group
from tests.support.helpers import PROJECT
from tests.support.nvidia_stubs import NVIDIA_STUBS
from tests.support.stubs import PROLOGUE
from tools.lab.base import Host, Site
from tools.lab.kube import BIN
from tools.lab.netlab import Lab
from tools.render.evaluate import raw_stack_config

STANDIN = PROJECT / ".engine" / "standin"
# Found by the CLI next to itself (the automation API puts the CLI's folder first on PATH).
KUBERNETES_PROVIDER = PROJECT / ".engine" / "bin" / "pulumi-resource-kubernetes"
OFFICE = Site("office", "198.51.100.0/26", "203.0.113.201")
ROLES = {"vpn-hub": ["vpn-hub"], "receipt": ["control-plane", "ingress"], "interface": ["worker", "ingress"]}


REPLICAS = 4  # the dev stack's time-slicing profile for its workstations' GPUs
STANDIN_WRAPPER = """#!/bin/sh
# The lab's MicroK8s stand-in (tests/support/microk8s_standin.py): a test host only.
PYTHONPATH={project} exec {python} -m tests.support.microk8s_standin "$0" "$@"
"""
CONTROL_PLANE = "receipt"
OPERATOR_PUBLIC = "203.0.113.250"
PRIVATE = ("/etc", "/var", "/usr/local/lib")
"""Written by the program's scripts (units, firewall rules, the metrics collector, MicroK8s'
/var/snap): each host's own layer, so no host's files reach the machine or another host."""


def workstation(i: int) -> str:
    return f"ws-{i}"


def lab_hosts(workstations: int = 2) -> list[Host]:
    """The dev stack's hosts; `workstations` NAT'd ones (ws-1 directly, the others through it).
    Every host's /etc, /var and /usr/local/lib are private layers (`PRIVATE`)."""
    hosts = [
        Host("vpn-hub", "192.0.2.10", public="203.0.113.10", overlays=PRIVATE),
        Host("receipt", "192.0.2.11", public="203.0.113.11", overlays=PRIVATE),
        Host("interface", "192.0.2.12", public="203.0.113.12", overlays=PRIVATE),
    ]
    for i in range(1, workstations + 1):
        # Reached through ws-1 at its LAN address: its sshd listens there too.
        listen = {"ListenAddress": "0.0.0.0"} if i > 1 else {}
        hosts.append(Host(workstation(i), f"192.0.2.{20 + i}", lan=f"198.51.100.{10 + i}", site=OFFICE.name, overlays=PRIVATE, sshd_options=listen))
    return hosts


def vpn_address(name: str) -> str:
    fixed = {"vpn-hub": "100.64.0.1", "receipt": "100.64.0.2", "interface": "100.64.0.3"}
    return fixed.get(name) or f"100.64.1.{int(name.removeprefix('ws-'))}"


def place_standins(lab: Lab, ca_dir: Path | None = None) -> None:
    """On every host's PATH (/usr/local/sbin): `snap` and `microk8s` (the MicroK8s stand-in),
    its wiring in /run/hybrid-ai-lab/microk8s.json; on workstations the NVIDIA stand-ins, state
    in /run/hybrid-ai-lab/nvidia: a loaded driver showing one GPU and the container toolkit's
    `nvidia-ctk`, as on a workstation whose driver and toolkit are installed (installing them is
    tested under stubs, tests/cluster)."""
    for h in lab.hosts.values():
        for command in ("snap", "microk8s"):
            path = h.dir / "sbin" / command
            path.write_text(STANDIN_WRAPPER.format(project=PROJECT, python=sys.executable))
            path.chmod(0o755)
        gpu = h.name.startswith("ws-")
        wiring: dict[str, Any] = {"kubectl": str(BIN / "kubectl"), "gpus": REPLICAS if gpu else 0}
        if h.name == CONTROL_PLANE and ca_dir is not None:
            wiring["ca_dir"] = str(ca_dir)
        (h.dir / "labstate" / "microk8s.json").write_text(json.dumps(wiring))
        if not gpu:
            continue
        state = h.dir / "labstate" / "nvidia"
        (state / "installed").mkdir(parents=True, exist_ok=True)
        (state / "driver-loaded").write_text("1\n")
        for tool in ("nvidia-smi", "nvidia-ctk"):
            stub = h.dir / "sbin" / tool
            stub.write_text(PROLOGUE.replace("set -u\n", "set -u\nSTATE=/run/hybrid-ai-lab/nvidia\n", 1) + NVIDIA_STUBS[tool] + "\n")
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
        if h.name.startswith("ws-") and h.name != "ws-1":
            existing["address"] = h.lan
            ssh["jumpHost"] = "ws-1"
        entry: dict[str, Any] = {"name": h.name, "site": h.site, "roles": ROLES.get(h.name, ["worker"]), "existing": existing,
                                 "ssh": ssh, "vpnAddress": vpn_address(h.name)}
        if h.name.startswith("ws-"):
            entry["gpu"] = {"model": "rtx-3090", "count": 1}
            entry["nvidia"] = {"installDriver": False, "installToolkit": False}
        hosts.append(entry)
    raw["hosts"] = hosts
    raw["firewall"] = {"adminCidrs": ["192.0.2.0/24", f"{OPERATOR_PUBLIC}/32"]}
    return raw | overrides


class ProgramStack:
    """The program's stack of the lab on its own file backend."""

    def __init__(self, lab: Lab, root: Path) -> None:
        self.lab, self.root, self.passphrase = lab, root, secrets.token_hex(16)

    def run(self, op: str, config: dict[str, Any], layers: str = "below-cluster") -> dict[str, Any]:
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key),
               "standin": str(STANDIN), "op": op, "config": config, "layers": layers}
        # A group of its own: on a timeout the driver and its CLI are interrupted, then killed, together.
        proc = subprocess.Popen(["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.program_driver"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT,
                                start_new_session=True)
        try:
            out, err = proc.communicate(json.dumps(job), timeout=900)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            out, err = proc.communicate()
            raise AssertionError(f"`{op}` stopped after 900 s: {err[-3000:]}") from None
        assert proc.returncode == 0, err[-3000:]
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def state_file(self) -> str:
        files = list((self.root / "state").rglob("lab.json"))
        assert len(files) == 1, files
        return files[0].read_text()
