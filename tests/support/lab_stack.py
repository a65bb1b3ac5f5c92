"""`Pulumi.lab.yaml`, the lab's example stack: the config tests/support/engine_lab.py gives the
real-engine lab (the dev stack's, with the lab's hosts: a hub, two cloud nodes, two NAT'd
workstations, ws-2 through ws-1 as its jump host), each host key a fixed placeholder. `make
preview STACK=lab` previews it whole with the CLI `make engine` builds; like the dev stack it
holds documentation addresses and no secret. Written by `python -m tests.support.lab_stack`;
tests/tools/test_preview.py checks it is what this writes."""

from __future__ import annotations

import base64
import hashlib
import struct
import sys
from pathlib import Path

import yaml

from tests.support.engine_lab import OFFICE, lab_config, lab_hosts
from tests.support.helpers import NS, PROJECT
from tools.lab.netlab import Lab

PATH = PROJECT / "Pulumi.lab.yaml"
HEADER = """\
# The lab's example stack: the hosts of the namespace lab `make e2e-engine` runs the program on
# (docs/e2e-engine.md), at documentation addresses, with placeholder host keys, and the dev
# stack's config otherwise. `make preview STACK=lab` previews the whole program with the CLI
# `make engine` builds and the lab's pulumi-command stand-in; no host is dialed. Written by
# `python -m tests.support.lab_stack` (do not edit by hand).
"""


def placeholder_host_key(name: str) -> str:
    """An ssh-ed25519 public key line of 32 bytes derived from the host's name (no one holds its private key)."""
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", hashlib.sha256(f"hybrid-ai lab {name}".encode()).digest()))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()}"


def render() -> str:
    lab = Lab(Path("/nonexistent"), [OFFICE], lab_hosts())  # never started: only its hosts' addresses are read
    for host in lab.hosts.values():
        host.host_key = placeholder_host_key(host.name)
    config = {f"{NS}:{key}": value for key, value in lab_config(lab).items()}
    return HEADER + yaml.safe_dump({"config": config}, sort_keys=False, default_flow_style=False, width=120)


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH.relative_to(PROJECT)}", file=sys.stderr)
