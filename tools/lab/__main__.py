"""`make lab-up` / `make lab-down`: the end-to-end lab, kept running to explore by hand.

up:   builds the lab of tools/lab/reference.py (the one tests/vpn/test_e2e_mesh.py runs) and applies the mesh layers of the plan to it;
      prints how to reach each host. State goes to build/lab.json.
down: stops every process the lab started (by the PIDs it recorded) and deletes its
      namespaces and folders.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
STATE = PROJECT / "build" / "lab.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args(argv)

    from tools.lab.base import missing_requirements
    from tools.lab.engine import Engine
    from tools.lab.netlab import Lab
    from tools.lab.reference import HOSTS, SITES, in_mesh_layers, lab_config

    if args.action == "down":
        if not STATE.exists():
            print("lab: no lab is running (no build/lab.json)")
            return 0
        Lab.down_saved(STATE)
        print("lab: stopped, namespaces and folders removed")
        return 0

    why = missing_requirements()
    if why:
        print(f"lab: cannot run here: {why}", file=sys.stderr)
        return 1
    if STATE.exists():
        print("lab: a lab is already up; run make lab-down first", file=sys.stderr)
        return 1
    lab = Lab(Path(tempfile.mkdtemp(prefix="hybrid-ai-lab-")), SITES, HOSTS).up()
    STATE.parent.mkdir(exist_ok=True)
    lab.save(STATE)
    try:
        Engine(lab, {"sshPrivateKey": lab.client_key.read_text()}, scope=in_mesh_layers).up(lab_config(lab))
    except Exception:
        Lab.down_saved(STATE)
        raise
    print(f"lab: {len(lab.hosts)} hosts up, mesh applied. Reach a host with:")
    print(f"  ip netns exec {lab.ns('op')} ssh -i {lab.client_key} -o UserKnownHostsFile={lab.known_hosts()} root@<address>")
    for h in lab.hosts.values():
        print(f"  {h.name:10} ssh {h.mgmt:12} namespace {h.ns}")
    print("Stop it with: make lab-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
