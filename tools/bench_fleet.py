"""The large stacks `make bench` previews (tests/support/bench.py), made from code: the dev
stack (its three cloud hosts, its config) with `workstations` GPU workstations in on-prem
offices of `site_size`, and a catalog of `models` (the dev catalog, then extra models,
tools/render/fleet.py).

Each office is a NAT'd LAN carved out of 198.51.100.0/24 (documentation range); its first
workstation is dialed at its LAN address and the others through it as their jump host (as the
dev stack's ws-2 can be); every workstation has its own pinned host key and overlay address,
and every other one keeps its driver (as the dev stack's ws-2)."""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import yaml

from stacks.load import NAMESPACE
from tools.render.fleet import fleet, reference

LAN = ipaddress.IPv4Network("198.51.100.0/24")
SHAPES = {"10x10": (100, 40, 10), "1x100": (100, 40, 100)}
"""name -> (workstations, models, site_size): the two shapes of the 100-workstation, 40-model fleet."""


def host_key(name: str) -> str:
    """A well-formed ed25519 host key line, its key bytes derived from the host's name."""
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + hashlib.sha256(name.encode()).digest()
    return f"ssh-ed25519 {base64.b64encode(blob).decode()}"


def office_lans(offices: int, site_size: int) -> list[ipaddress.IPv4Network]:
    """One LAN per office, each the smallest block holding its router and `site_size` hosts."""
    prefix = 32 - max(2, (site_size + 2).bit_length())  # + network, router, broadcast
    blocks = list(LAN.subnets(new_prefix=prefix)) if prefix >= LAN.prefixlen else []
    if len(blocks) < offices:
        raise ValueError(f"{offices} offices of {site_size} do not fit in {LAN}")
    return blocks[:offices]


def office_fleet(workstations: int, models: int, site_size: int) -> dict[str, Any]:
    """The stack's keys (namespace stripped) of that fleet."""
    raw = fleet(0, models)  # the dev stack's cloud hosts and catalog
    dev = {h["name"]: h for h in reference()["hosts"]}
    offices = -(-workstations // site_size)
    lans = office_lans(offices, site_size)
    for i, lan in enumerate(lans):
        raw["sites"].append({"name": f"office-{i + 1}", "kind": "on-prem", "nat": True, "lanCidr": str(lan)})
    for n in range(workstations):
        office, slot = divmod(n, site_size)
        name = f"ws-{office + 1}-{slot + 1}"
        host = copy.deepcopy(dev["ws-2" if slot % 2 else "ws-1"])
        host |= {"name": name, "site": f"office-{office + 1}", "existing": {"address": str(lans[office][2 + slot])},
                 "vpnAddress": f"100.64.{office + 1}.{slot + 1}"}
        host["ssh"] = dict(host["ssh"], hostKey=host_key(name))
        if slot:
            host["ssh"]["jumpHost"] = f"ws-{office + 1}-1"
        raw["hosts"].append(host)
    return raw


def write_stack_file(raw: dict[str, Any], directory: Path, stack: str) -> Path:
    """`raw` as `Pulumi.<stack>.yaml` in `directory` (what `make render STACK=<stack>` reads)."""
    path = directory / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"{NAMESPACE}:{k}": v for k, v in raw.items()}}, sort_keys=False))
    return path
