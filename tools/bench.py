"""`make bench-render`: how fast and how flat the program stays as the fleet grows.

Each size renders in a fresh process through the same path as `make render` (mock
evaluation, then plan, graph and artifacts written to a scratch folder); a number is the
median of `--runs` processes; the scratch folder is in memory (tmpfs) where there is one, so
that a disk's latency does not count (`--on-disk` to include it). The floor of a size is what
the Pulumi SDK alone needs for the plan that render produced: another fresh process replays
its resources (count, types, names, parents, inputs, custom timeouts, the union of their
dependency edges, a custom resource's provider) as plain resources under bare mocks, with no
program logic (tools/floor.py; docs/performance.md);
`ratio = (render wall - its import) / floor`. Writes build/bench-render.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.floor import replay_of, time_replay
from tools.scratch import memory_fs

PROJECT_DIR = Path(__file__).resolve().parents[1]
SIZES: dict[str, tuple[int, int] | None] = {"reference": None, "50/20": (50, 20), "100/40": (100, 40), "200/80": (200, 80)}


def _child(size: str, out: str) -> None:
    """One measured render, in this (fresh) process; prints a JSON line."""
    start = time.perf_counter()
    import stacks.program  # noqa: F401
    from tools.render import evaluate, fleet, write

    imported, cpu_imported = time.perf_counter(), time.process_time()
    raw = fleet.reference() if SIZES[size] is None else fleet.fleet(*(SIZES[size] or (0, 0)))
    ev = evaluate.evaluate_stack_file(PROJECT_DIR, "dev") if SIZES[size] is None else evaluate_raw(raw)
    evaluated = time.perf_counter()
    write.write_all(ev, Path(out))
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # Graphviz
    cpu = time.process_time() - cpu_imported + children.ru_utime + children.ru_stime
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the render's, before the bench's own copy below
    Path(out + REPLAY).write_text(json.dumps(replay_of(ev)))  # not timed: the floor's input
    print(json.dumps({
        "wall_s": wall, "import_s": imported - start, "eval_s": evaluated - imported, "write_s": wall - (evaluated - start),
        "cpu_s": cpu, "resources": len(ev.resources), "depth": ev.depth(), "peak_rss_mb": peak,
        "workstations": sum(1 for h in raw["hosts"] if "gpu" in h), "models": len(raw["models"]),
    }))


REPLAY = ".replay.json"


def evaluate_raw(raw: dict[str, Any]) -> Any:
    from tools.render.evaluate import evaluate_raw as evaluate

    return evaluate(raw, {"sshPrivateKey": "[secret placeholder for hybrid-ai:sshPrivateKey]"}, "bench")


def _run_child(size: str, out: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "tools.bench", "--child", size, "--out", str(out)],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _run_floor(replay_file: Path, same_gc: bool = False) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "tools.bench", "--floor", str(replay_file), *(["--same-gc"] if same_gc else [])],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _measure(size: str, tmp: Path, runs: int, tidy: bool) -> dict[str, Any]:
    """`runs` renders of `size`, each followed by the floor of the plan it rendered (interleaved,
    so that both see the same load on a shared machine); ratios are medians over the pairs.
    `tidy`: delete each render once measured (in memory; on disk, deleting files slows the next
    render's file creation)."""
    samples, floors, tuned = [], [], []
    for i in range(runs):
        out = tmp / f"{size.replace('/', '-')}-{i}"
        samples.append(_run_child(size, out))
        floors.append(_run_floor(Path(str(out) + REPLAY)))
        tuned.append(_run_floor(Path(str(out) + REPLAY), same_gc=True))
        if tidy:
            shutil.rmtree(out)
            Path(str(out) + REPLAY).unlink()
    render_s = statistics.median(s["wall_s"] - s["import_s"] for s in samples)
    floor_s = statistics.median(f["floor_s"] for f in floors)
    # CPU seconds (threads and Graphviz included) move less than wall time when others share the cores.
    cpu_ratio = statistics.median(s["cpu_s"] / f["cpu_s"] for s, f in zip(samples, floors, strict=True))
    ratios = [(s["wall_s"] - s["import_s"]) / f["floor_s"] for s, f in zip(samples, floors, strict=True)]
    return {
        "size": size, "workstations": samples[0]["workstations"], "models": samples[0]["models"],
        "resources": samples[0]["resources"], "depth": samples[0]["depth"],
        "wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
        # Both from the same processes: an import measured in another process can take
        # longer than a whole render under CPU contention.
        "import_s": round(statistics.median(s["import_s"] for s in samples), 3),
        "render_s": round(render_s, 3),
        "peak_rss_mb": round(statistics.median(s["peak_rss_mb"] for s in samples), 1),
        # Per pair: a render and the floor right after it see much the same load.
        "floor_s": round(floor_s, 3),
        # Seconds above the floor: the floor grows faster than the plan (its cycle check), so a
        # ratio alone flatters the bigger sizes.
        "excess_s": round(render_s - floor_s, 3),
        "ratio": round(statistics.median(ratios), 3),
        # The spread of the pairs: how much the load moved the ratio in this run.
        "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3),
        # Fastest render over fastest floor: each process's least disturbed run (as `timeit` advises).
        "ratio_best": round(min(s["wall_s"] - s["import_s"] for s in samples) / min(f["floor_s"] for f in floors), 3),
        "eval_ratio": round(statistics.median(s["eval_s"] / f["floor_s"] for s, f in zip(samples, floors, strict=True)), 3),
        "write_s": round(statistics.median(s["write_s"] for s in samples), 3),
        "cpu_ratio": round(cpu_ratio, 3),
        # The floor with the program's own gc tuning: the SDK pays much of its default floor in
        # collections the program avoids, so this ratio is the program logic's alone.
        "floor_same_gc_s": round(statistics.median(f["floor_s"] for f in tuned), 3),
        "ratio_same_gc": round(statistics.median((s["wall_s"] - s["import_s"]) / f["floor_s"] for s, f in zip(samples, tuned, strict=True)), 3),
    }


def _import_only() -> float:
    code = "import time; t = time.perf_counter(); import stacks.program; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=True)
    return float(result.stdout.strip())


def changed_outside(before: Any, after: Any, own: str) -> list[str]:
    """Resources in both plans, not named for `own`, whose inputs differ."""
    return sorted(name for name in before.changes(after).changed if own not in name)


def blast_radius() -> dict[str, Any]:
    from tools.render.fleet import reference

    base = evaluate_raw(reference())
    with_model = reference()
    with_model["models"].append({"name": "bench-model", "image": "ghcr.io/example/bench-model:1.0.0", "placement": "gpu",
                                 "gpus": 1, "port": 8000, "talksTo": ["tf-serving"]})
    with_model["models"].append({"name": "bench-tf", "kind": "tf-model", "placement": "gpu", "tf": {
        "basePath": "/models/bench-tf", "version": 1, "source": "https://models.example.com/bench-tf-1.tar.gz", "sha256": "1" * 64}})
    # A TF model changes the model list and adds its fetch container to TF-Serving's pod.
    model_changes = [n for n in changed_outside(base, evaluate_raw(with_model), "bench-model")
                     if n not in ("tf-serving-models", "tf-serving-deployment")]
    with_ws = reference()
    template = next(h for h in with_ws["hosts"] if h["name"] == "ws-2")
    with_ws["hosts"].append(dict(template, name="ws-3", existing={"address": "198.51.100.23"}, vpnAddress="100.64.1.3"))
    ws_changes = changed_outside(base, evaluate_raw(with_ws), "ws-3")
    return {"add_model_changed": len(model_changes), "add_model_changed_names": model_changes,
            "add_workstation_changed": len(ws_changes), "add_workstation_changed_names": ws_changes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-render", description=__doc__)
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--runs", type=int, default=3, help="processes per size (the median is reported)")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "bench-render.json")
    parser.add_argument("--on-disk", action="store_true",
                        help="render into the system's temporary folder, not memory (docs/performance.md)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    parser.add_argument("--same-gc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, str(args.out))
        return 0
    if args.floor:
        time_replay(args.floor, args.same_gc)
        return 0

    report: dict[str, Any] = {"import_s": statistics.median(_import_only() for _ in range(args.runs)), "runs": []}
    scratch = None if args.on_disk else memory_fs()  # tools/scratch.py says why
    report["scratch"] = "memory" if scratch else "disk"
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        for size in args.sizes.split(","):
            report["runs"].append(_measure(size, Path(tmp), args.runs, tidy=scratch is not None))
        first, second = Path(tmp) / "again-1", Path(tmp) / "again-2"
        _run_child("reference", first)
        _run_child("reference", second)
        report["rerender_identical"] = (first / "plan.json").read_bytes() == (second / "plan.json").read_bytes()
    report["import_s"] = round(report["import_s"], 3)
    report |= blast_radius()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"renders written to {report['scratch']}")
    print(f"{'size':>10} {'workstations':>12} {'models':>6} {'resources':>9} {'wall_s':>7} {'-import':>8} "
          f"{'floor_s':>7} {'ratio':>5} {'min-max':>9} {'best':>5} {'eval':>5} {'cpu_ratio':>9} {'same_gc':>7} {'rss_mb':>7} {'depth':>5}")
    for r in report["runs"]:
        print(f"{r['size']:>10} {r['workstations']:>12} {r['models']:>6} {r['resources']:>9} {r['wall_s']:>7.2f} "
              f"{r['render_s']:>8.2f} {r['floor_s']:>7.2f} {r['ratio']:>5.2f} {r['ratio_min']:>4.2f}-{r['ratio_max']:<4.2f} "
              f"{r['ratio_best']:>5.2f} {r['eval_ratio']:>5.2f} {r['cpu_ratio']:>9.2f} {r['ratio_same_gc']:>7.2f} {r['peak_rss_mb']:>7.1f} {r['depth']:>5}")
    print(f"import_s={report['import_s']} rerender_identical={report['rerender_identical']} "
          f"add_model_changed={report['add_model_changed']} add_workstation_changed={report['add_workstation_changed']} "
          f"({', '.join(report['add_workstation_changed_names'])})")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
