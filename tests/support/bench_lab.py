"""The engine lab of `make e2e-engine` (tests/support/cluster_lab.py) with any number of office
workstations, and the timings `make bench` takes on it (tests/support/bench.py): `up` of the
stack with 6 hosts and with 12, the second `up`, one workstation added to the running stack, and
`destroy`.

The lab is the engine lab's own, built by its own host builder (`lab_hosts`) with as many
workstations as the largest stack needs: a hub, two cloud nodes and ws-1 .. ws-<n> behind the
office NAT, ws-2 and on through ws-1 as their jump host; the control plane (a real
kube-apiserver with etcd and kwok) on `receipt`, the MicroK8s and NVIDIA stand-ins on every
host, the chart mirror. A stack of `k` workstations is the lab's config (`ClusterLab.config`)
with ws-1 .. ws-<k> only. `LAYERS` picks what runs: `all` (the whole program: hosts, VPN,
cluster bootstrap, the Kubernetes layer) or `below-cluster` (hosts, mesh, firewalls).

Run as root: `python -m tests.support.bench_lab [--workstations 3,9] [--layers all]` prints the
timings as one JSON line (what tests/support/bench.py runs, under `nice`)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.cluster_lab import ClusterLab
from tests.support.engine_lab import STANDIN, ProgramStack
from tests.support.helpers import PROJECT
from tools.bench_report import critical_path, parallel_hosts
from tools.lab.netlab import Lab

LAYERS = "all"


def workstations_of(raw: dict[str, Any], workstations: int) -> dict[str, Any]:
    """The lab's config `raw` with its workstations ws-1 .. ws-<workstations> only."""
    hosts = [h for h in raw["hosts"] if not h["name"].startswith("ws-") or int(h["name"][3:]) <= workstations]
    if sum(h["name"].startswith("ws-") for h in hosts) != workstations:
        raise ValueError(f"the lab has fewer than {workstations} workstations")
    return raw | {"hosts": hosts}


def bench_config(cluster: ClusterLab, workstations: int) -> dict[str, Any]:
    """The engine lab's stack (`ClusterLab.config`) with `workstations` workstations."""
    return workstations_of(cluster.config(), workstations)


class BenchStack(ProgramStack):
    """engine_lab's stack, run through tests/support/bench_driver.py (the engine's events recorded)
    with the CLI's `--parallel` at `parallel` (0: the CLI's default)."""

    parallel = 0
    checkpoints = True
    """False: the CLI saves the state once, at the end (PULUMI_SKIP_CHECKPOINTS; a diagnostic)."""

    def run(self, op: str, config: dict[str, Any], layers: str = LAYERS) -> dict[str, Any]:
        job = {"root": str(self.root), "passphrase": self.passphrase, "key_file": str(self.lab.client_key),
               "standin": str(STANDIN), "op": op, "config": config, "layers": layers, "parallel": self.parallel}
        env = os.environ | ({} if self.checkpoints else {"PULUMI_SKIP_CHECKPOINTS": "true"})
        proc = subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "tests.support.bench_driver"],
            input=json.dumps(job), capture_output=True, text=True, cwd=PROJECT, timeout=1800, check=False, env=env,
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
    changes and resource count, the hosts' busy share, the CPU seconds the engine's side and the
    hosts' side used, those the whole machine used over the CLI's time (the driver's), and its critical path; a failed step stops the bench with the CLI's own words."""
    cpu = engine_cpu_s(), hosts_cpu_s(stack.lab)
    result = stack.run(op, config, layers=layers)
    cpu = engine_cpu_s() - cpu[0], hosts_cpu_s(stack.lab) - cpu[1]
    if not result["ok"]:
        raise SystemExit(f"bench: pulumi {op} failed:\n" + "\n".join(result["log"][-30:]) + result["error"][-2000:])
    hosts = [h["name"] for h in config["hosts"]]
    return {"s": round(result["elapsed"], 2), "changes": result["changes"], "resources": len(result["resources"]),
            "hosts": len(hosts), "parallel_hosts": parallel_hosts(result["steps"], hosts, result["elapsed"]),
            "engine_cpu_s": round(cpu[0], 2), "hosts_cpu_s": round(cpu[1], 2),
            "machine_cpu_s": result["machine_cpu_s"],
            "critical_path_s": critical_path(result["steps"], result["dependencies"]),
            "steps": result["steps"], "dependencies": result["dependencies"]}


def fresh_apiserver(cluster: ClusterLab) -> None:
    """After a `destroy`, before the next stack: a real destroy removes MicroK8s and its API server
    with it; the lab's outlives it, and would serve the next stack's known-nodes policies from a
    frozen copy of its list (tests/kube/test_vap_params.py)."""
    assert cluster.plane is not None
    cluster.plane.restart_apiserver()


def run_lab(small: int, large: int, layers: str, root: Path) -> dict[str, Any]:
    """On one engine lab with every host either stack needs: the small stack up, up again, one
    workstation added, destroyed; then the large stack up, up again, destroyed; then each `up`
    again with the CLI's checkpoints off (each destroyed after)."""
    steps: dict[str, Any] = {"layers": layers}
    with ClusterLab(root, workstations=max(small + 1, large)) as cluster:
        stack = BenchStack(cluster.lab, root / "small")
        steps["up_small"] = step(stack, "up", bench_config(cluster, small), layers)
        steps["again_small"] = step(stack, "up", bench_config(cluster, small), layers)
        steps["add_workstation"] = step(stack, "up", bench_config(cluster, small + 1), layers)
        steps["destroy_small"] = step(stack, "destroy", bench_config(cluster, small + 1), layers)
        fresh_apiserver(cluster)
        stack = BenchStack(cluster.lab, root / "large")
        steps["up_large"] = step(stack, "up", bench_config(cluster, large), layers)
        steps["again_large"] = step(stack, "up", bench_config(cluster, large), layers)
        steps["destroy_large"] = step(stack, "destroy", bench_config(cluster, large), layers)
        fresh_apiserver(cluster)
        # Both `up`s again with the CLI's checkpoints off: how much of their time the state
        # file's saves take (docs/performance.md).
        for key, workstations in (("small", small), ("large", large)):
            stack = BenchStack(cluster.lab, root / f"{key}-unsaved")
            stack.checkpoints = False
            steps[f"up_{key}_unsaved"] = step(stack, "up", bench_config(cluster, workstations), layers)
            stack.checkpoints = True
            step(stack, "destroy", bench_config(cluster, workstations), layers)
            fresh_apiserver(cluster)
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
