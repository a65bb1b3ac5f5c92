"""`make bench`: the program under the real Pulumi CLI, timed; ratios within one run, since
absolute times do not travel (docs/performance.md).

1. The engine lab (tests/support/bench_lab.py, root): `up` of a 6-host stack and of the same
   stack with 12 hosts, each's second `up`, one workstation added to the running 6-host stack,
   `destroy`: the whole program (`--layers all`: hosts, VPN, cluster bootstrap on the lab's real
   API server, the Kubernetes layer), or `--layers below-cluster`.
2. The 100-workstation, 40-model fleet (tools/bench_fleet.py) in two shapes: the real CLI's
   `preview` of the whole program (the stand-in for pulumi-command, the real pulumi-kubernetes
   provider; no host is dialed) against `make render` of the same stack file.

Every timed process runs under `nice`. Writes build/bench.json (tools/bench_report.py: schema
and goals), each operation's per-resource steps (and for the lab's, what each resource waits on) to
build/bench-steps.json, and with `--docs`
copies the record to docs/bench.json and its table into docs/performance.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.engine_lab import STANDIN
from tests.support.helpers import PROJECT
from tools.bench_fleet import SHAPES, office_fleet, write_stack_file
from tools.bench_report import DOCS, RECORD, Bench, FleetRun, goals, with_table

CLI = PROJECT / ".engine" / "bin" / "pulumi"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], nice: int, stdin: str | None = None, timeout: float = 3600) -> tuple[float, float, str]:
    """Run `argv` under `nice` from the project; its wall seconds, the CPU seconds of its process
    tree, and its stdout."""
    start, cpu = time.monotonic(), children_cpu_s()
    proc = subprocess.run(["nice", "-n", str(nice), *argv], input=stdin, capture_output=True, text=True, cwd=PROJECT,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:4])} failed:\n{proc.stderr[-3000:]}\n{proc.stdout[-2000:]}")
    return time.monotonic() - start, children_cpu_s() - cpu, proc.stdout


def fleet_run(shape: str, nice: int, tmp: Path) -> tuple[FleetRun, dict[str, Any]]:
    """`make render` of the shape's stack file, then the real CLI's preview of the same config."""
    workstations, models, site_size = SHAPES[shape]
    raw = office_fleet(workstations, models, site_size)
    folder = tmp / shape
    folder.mkdir()
    stack = f"bench-{shape}"
    write_stack_file(raw, folder, stack)
    render_s, render_cpu_s, _ = timed([sys.executable, "-m", "tools.render", "--stack", stack, "--dir", str(folder), "--out", str(folder / "render")], nice)
    key = folder / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True)
    job = {"root": str(folder / "stack"), "passphrase": "bench", "key_file": str(key), "standin": str(STANDIN),
           "op": "preview", "config": raw, "layers": "all"}
    _, preview_cpu_s, out = timed([sys.executable, "-m", "tests.support.bench_driver"], nice, stdin=json.dumps(job))
    result = json.loads(out.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit("bench: the fleet's preview failed:\n" + "\n".join(result["log"][-30:]) + result["error"][-2000:])
    run = FleetRun(shape=shape, workstations=workstations, models=models, offices=-(-workstations // site_size),
                   resources=result["changes"]["create"], preview_s=round(result["import_s"] + result["elapsed"], 2), render_s=round(render_s, 2),
                   preview_cpu_s=round(preview_cpu_s, 1), render_cpu_s=round(render_cpu_s, 1))
    return run, {"steps": result["steps"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workstations", default="3,9", help="workstations of the lab's small and large stacks (hosts: 3 more)")
    parser.add_argument("--layers", default="all", choices=("below-cluster", "all"), help="what the lab stack runs")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"fleet shapes, of: {', '.join(SHAPES)}")
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--out", type=Path, default=PROJECT / "build" / "bench.json")
    parser.add_argument("--docs", action="store_true", help="also docs/bench.json and docs/performance.md's table")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not CLI.exists() or not (STANDIN / "pulumi-resource-command").exists():
        print("bench: needs root (the lab's network namespaces), `make engine` and `make command-standin`", file=sys.stderr)
        return 2
    load = [round(x, 2) for x in os.getloadavg()]
    version = subprocess.run([str(CLI), "version"], capture_output=True, text=True, check=True).stdout.strip()
    _, _, out = timed([sys.executable, "-m", "tests.support.bench_lab", "--workstations", args.workstations, "--layers", args.layers],
                   args.nice)
    lab = json.loads(out.strip().splitlines()[-1])
    steps: dict[str, Any] = {f"lab.{k}": {"steps": v.pop("steps"), "dependencies": v.pop("dependencies")}
                             for k, v in lab.items() if isinstance(v, dict)}
    lab.pop("wall_s", None)
    fleet = []
    with tempfile.TemporaryDirectory(prefix="hybrid-ai-bench.") as tmp:
        for shape in args.shapes.split(","):
            run, steps[f"fleet.{shape}"] = fleet_run(shape, args.nice, Path(tmp))
            fleet.append(run)
    bench = Bench.model_validate({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "cpus": len(os.sched_getaffinity(0)),
        "load": load, "load_end": [round(x, 2) for x in os.getloadavg()], "nice": args.nice, "cli": version,
        "lab": lab, "fleet": [f.model_dump() for f in fleet],
    })
    bench = bench.model_copy(update={"goals": goals(bench)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(bench.model_dump_json(indent=2) + "\n")
    args.out.with_name("bench-steps.json").write_text(json.dumps(steps) + "\n")
    if args.docs:
        shutil.copy(args.out, RECORD)
        DOCS.write_text(with_table(DOCS.read_text(), bench))
    for goal in bench.goals:
        print(f"{goal.name}: {goal.value:.2f} (goal <= {goal.limit:g}) {'met' if goal.met else 'MISSED'}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
