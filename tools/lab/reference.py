"""The lab's reference deployment: the dev stack's hosts as network namespaces, two office sites
behind their own NAT routers (ws-1 and ws-2 in one, ws-3 in the other), and its config: the dev
stack's, with the lab's hosts put in. `make lab-up` and the mesh tests run the program on it
under the real Pulumi CLI (tests/support/mesh_lab.py); the backup lab starts from it too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.lab.base import Host, Site
from tools.lab.netlab import Lab
from tools.render.evaluate import raw_stack_config

PROJECT = Path(__file__).resolve().parents[2]

SITES = [Site("office-a", "198.51.100.0/26", "203.0.113.201"), Site("office-b", "198.51.100.64/26", "203.0.113.202")]
# Hosts with a public address get the host firewall: their /etc is a private layer (its unit
# and rules file never reach the machine).
HOSTS = [
    Host("vpn-hub", "192.0.2.10", public="203.0.113.10", overlays=("/etc",)),
    Host("receipt", "192.0.2.11", public="203.0.113.11", overlays=("/etc",)),
    Host("interface", "192.0.2.12", public="203.0.113.12", overlays=("/etc",)),
    Host("ws-1", "192.0.2.21", lan="198.51.100.11", site="office-a"),
    Host("ws-2", "192.0.2.22", lan="198.51.100.12", site="office-a"),
    Host("ws-3", "192.0.2.23", lan="198.51.100.71", site="office-b"),
]
VPN = {"vpn-hub": "100.64.0.1", "receipt": "100.64.0.2", "interface": "100.64.0.3", "ws-1": "100.64.1.1", "ws-2": "100.64.1.2", "ws-3": "100.64.2.1"}
ROLES = {"vpn-hub": ["vpn-hub"], "receipt": ["control-plane", "ingress"], "interface": ["worker", "ingress"]}


def lab_config(lab: Lab, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dev stack's config with the lab's hosts (their real host keys pinned) but `without`.
    Workstations have one GPU whose driver and toolkit are installed already (the lab's NVIDIA
    stand-in answers for it); the API port opens to the management network."""
    raw = raw_stack_config(PROJECT, "dev")
    raw["sites"] = [{"name": "cloud", "kind": "cloud"}] + [
        {"name": s.name, "kind": "on-prem", "nat": True, "lanCidr": s.lan_cidr} for s in SITES
    ]
    hosts = []
    for h in lab.hosts.values():
        if h.name in without:
            continue
        existing: dict[str, Any] = {"address": h.mgmt}
        existing |= {"publicAddress": h.public} if h.public else {"lanAddress": h.lan}
        entry: dict[str, Any] = {
            "name": h.name, "site": h.site, "roles": ROLES.get(h.name, ["worker"]), "existing": existing,
            "ssh": {"user": "root", "hostKey": h.host_key}, "vpnAddress": VPN[h.name],
        }
        if h.name.startswith("ws-"):
            entry["gpu"] = {"model": "rtx-3090", "count": 1}
            entry["nvidia"] = {"installDriver": False, "installToolkit": False}
        hosts.append(entry)
    raw["hosts"] = hosts
    raw["firewall"] = {"adminCidrs": ["192.0.2.0/24"]}
    return raw
