"""The engine lab (tests/support/engine_lab.py) with any number of office workstations, and the
timings `make bench` takes on it (tests/support/bench.py): `up` of the stack with 6 hosts and
with 12, the second `up`, one workstation added to the running stack, and `destroy`.

The hosts are the engine lab's, unchanged (a hub, two cloud nodes, ws-1 and ws-2 behind the
office NAT, ws-2 through ws-1 as its jump host); ws-3 and on follow the same pattern: odd ones
dialed directly, even ones through ws-1. `LAYERS` picks what runs: `below-cluster` (hosts, mesh,
firewalls: what the real engine runs today) or `all` (the whole program, once the lab runs the
cluster layer).

Run as root: `python -m tests.support.bench_lab [--workstations 3,9] [--layers below-cluster]`
prints the timings as one JSON line (what tests/support/bench.py runs, under `nice`)."""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.engine_lab import OFFICE, PRIVATE, STANDIN, ProgramStack, lab_config, lab_hosts, place_standins
from tests.support.helpers import PROJECT
from tools.bench_report import parallel_hosts
from tools.lab.base import Host
from tools.lab.netlab import Lab

LAYERS = "below-cluster"
BASE_WORKSTATIONS = 2  # engine_lab's own: ws-1, ws-2
JUMP = "ws-1"


def bench_hosts(workstations: int) -> list[Host]:
    """The engine lab's hosts, then ws-3 .. ws-<workstations> in the same office, each with the
    lab's private /etc, /var and /usr/local/lib (what a host writes there stays its own)."""
    hosts = lab_hosts()
    for k in range(BASE_WORKSTATIONS + 1, workstations + 1):
        jumped = k % 2 == 0
        hosts.append(Host(f"ws-{k}", f"192.0.2.{20 + k}", lan=f"198.51.100.{10 + k}", site=OFFICE.name, overlays=PRIVATE,
                          sshd_options={"ListenAddress": "0.0.0.0"} if jumped else {}))
    return hosts


def bench_config(lab: Lab, workstations: int) -> dict[str, Any]:
    """engine_lab's config of its own hosts, with ws-3 .. ws-<workstations> (each with its own
    host key pinned) made from its ws-1 (dialed directly) and ws-2 (through ws-1)."""
    view = copy.copy(lab)
    view.hosts = {n: h for n, h in lab.hosts.items() if not _extra(n)}
    raw = lab_config(view)
    template = {h["name"]: h for h in raw["hosts"]}
    raw["hosts"] = [h for h in raw["hosts"] if not h["name"].startswith("ws-") or int(h["name"][3:]) <= workstations]
    for k in range(BASE_WORKSTATIONS + 1, workstations + 1):
        host = lab.hosts[f"ws-{k}"]
        entry = copy.deepcopy(template["ws-2" if k % 2 == 0 else "ws-1"])
        entry["name"] = host.name
        entry["existing"] |= {"address": host.lan if k % 2 == 0 else host.mgmt, "lanAddress": host.lan}
        entry["ssh"]["hostKey"] = host.host_key
        entry["vpnAddress"] = f"100.64.1.{k}"
        raw["hosts"].append(entry)
    return raw


def _extra(name: str) -> bool:
    return name.startswith("ws-") and int(name[3:]) > BASE_WORKSTATIONS


class BenchStack(ProgramStack):
    """engine_lab's stack, run through tests/support/bench_driver.py (the engine's events recorded)
    with the CLI's `--parallel` at `parallel` (0: the CLI's default)."""

    parallel = 0

    def run(self, op: str, config: dict[str, Any], layers: str = LAYERS) -> dict[str, Any]:
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key),
               "standin": str(STANDIN), "op": op, "config": config, "layers": layers, "parallel": self.parallel}
        proc = subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.bench_driver"],
            input=json.dumps(job), capture_output=True, text=True, cwd=PROJECT, timeout=1800, check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"bench: the driver of pulumi {op} failed:\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def hosts_cpu_s(lab: Lab) -> float:
    """CPU seconds the lab hosts' finished SSH sessions used (each host's sshd reaps its
    sessions: its children's user and system time, /proc/<pid>/stat fields 16 and 17)."""
    ticks = 0
    for h in lab.hosts.values():
        assert h.sshd is not None
        fields = Path(f"/proc/{h.sshd.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def engine_cpu_s() -> float:
    """CPU seconds of this process's finished children: the driver, the CLI, the program, the providers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def step(stack: ProgramStack, op: str, config: dict[str, Any], layers: str) -> dict[str, Any]:
    """One CLI operation: its time (the CLI's, from the automation API call to its summary), its
    changes and resource count, the hosts' busy share and the CPU seconds the engine's side and
    the hosts' side used; a failed step stops the bench with the CLI's own words."""
    cpu = engine_cpu_s(), hosts_cpu_s(stack.lab)
    result = stack.run(op, config, layers=layers)
    cpu = engine_cpu_s() - cpu[0], hosts_cpu_s(stack.lab) - cpu[1]
    if not result["ok"]:
        raise SystemExit(f"bench: pulumi {op} failed:\n" + "\n".join(result["log"][-30:]) + result["error"][-2000:])
    hosts = [h["name"] for h in config["hosts"]]
    return {"s": round(result["elapsed"], 2), "changes": result["changes"], "resources": len(result["resources"]),
            "hosts": len(hosts), "parallel_hosts": parallel_hosts(result["steps"], hosts, result["elapsed"]),
            "engine_cpu_s": round(cpu[0], 2), "hosts_cpu_s": round(cpu[1], 2),
            "steps": result["steps"]}


def run_lab(small: int, large: int, layers: str, root: Path) -> dict[str, Any]:
    """On one lab with every host either stack needs: the small stack up, up again, one
    workstation added, destroyed; then the large stack up, up again, destroyed."""
    steps: dict[str, Any] = {"layers": layers}
    (root / "lab").mkdir()
    with Lab(root / "lab", [OFFICE], bench_hosts(max(small + 1, large))) as lab:
        place_standins(lab)
        stack = BenchStack(lab, root / "small")
        steps["up_small"] = step(stack, "up", bench_config(lab, small), layers)
        steps["again_small"] = step(stack, "up", bench_config(lab, small), layers)
        steps["add_workstation"] = step(stack, "up", bench_config(lab, small + 1), layers)
        steps["destroy_small"] = step(stack, "destroy", bench_config(lab, small + 1), layers)
        stack = BenchStack(lab, root / "large")
        steps["up_large"] = step(stack, "up", bench_config(lab, large), layers)
        steps["again_large"] = step(stack, "up", bench_config(lab, large), layers)
        steps["destroy_large"] = step(stack, "destroy", bench_config(lab, large), layers)
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.bench_lab", description=__doc__)
    parser.add_argument("--workstations", default="3,9", help="small,large: workstations of the two stacks (hosts = 3 + these)")
    parser.add_argument("--layers", default=LAYERS, choices=("below-cluster", "all"))
    args = parser.parse_args(argv)
    small, large = (int(n) for n in args.workstations.split(","))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hybrid-ai-bench.") as tmp:
        steps = run_lab(small, large, args.layers, Path(tmp))
    steps["wall_s"] = round(time.monotonic() - start, 1)
    print(json.dumps(steps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
