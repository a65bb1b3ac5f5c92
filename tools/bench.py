"""`make bench`: how fast and how flat the program stays as the fleet grows.

Each size renders in a fresh process through the same path as `make render` (mock
evaluation, then plan, graph and artifacts written to a scratch folder); a number is the
median of `--runs` processes. Writes build/bench.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
SIZES: dict[str, tuple[int, int] | None] = {"reference": None, "50/20": (50, 20), "100/40": (100, 40), "200/80": (200, 80)}


def _child(size: str, out: str) -> None:
    """One measured render, in this (fresh) process; prints a JSON line."""
    start = time.perf_counter()
    import stacks.program  # noqa: F401
    from tools.render import evaluate, fleet, write

    imported = time.perf_counter()
    raw = fleet.reference() if SIZES[size] is None else fleet.fleet(*(SIZES[size] or (0, 0)))
    ev = evaluate.evaluate_stack_file(PROJECT_DIR, "dev") if SIZES[size] is None else evaluate_raw(raw)
    write.write_all(ev, Path(out))
    wall = time.perf_counter() - start
    print(json.dumps({
        "wall_s": wall, "import_s": imported - start, "resources": len(ev.resources), "depth": ev.depth(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workstations": sum(1 for h in raw["hosts"] if "gpu" in h), "models": len(raw["models"]),
    }))


def evaluate_raw(raw: dict[str, Any]) -> Any:
    from tools.render.evaluate import evaluate_raw as evaluate

    return evaluate(raw, {"sshPrivateKey": "[secret placeholder for hybrid-ai:sshPrivateKey]"}, "bench")


def _run_child(size: str, out: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "tools.bench", "--child", size, "--out", str(out)],
                            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


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
    with_model["models"].append({"name": "bench-tf", "kind": "tf-model", "placement": "gpu", "tf": {"basePath": "/models/bench-tf", "version": 1}})
    model_changes = [n for n in changed_outside(base, evaluate_raw(with_model), "bench-model") if n != "tf-serving-models"]
    with_ws = reference()
    template = next(h for h in with_ws["hosts"] if h["name"] == "ws-2")
    with_ws["hosts"].append(dict(template, name="ws-3", existing={"address": "198.51.100.23"}, vpnAddress="100.64.1.3"))
    ws_changes = changed_outside(base, evaluate_raw(with_ws), "ws-3")
    return {"add_model_changed": len(model_changes), "add_model_changed_names": model_changes,
            "add_workstation_changed": len(ws_changes), "add_workstation_changed_names": ws_changes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--runs", type=int, default=3, help="processes per size (the median is reported)")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "bench.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, str(args.out))
        return 0

    report: dict[str, Any] = {"import_s": statistics.median(_import_only() for _ in range(args.runs)), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            samples = [_run_child(size, Path(tmp) / f"{size.replace('/', '-')}-{i}") for i in range(args.runs)]
            report["runs"].append({
                "size": size, "workstations": samples[0]["workstations"], "models": samples[0]["models"],
                "resources": samples[0]["resources"], "depth": samples[0]["depth"],
                "wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
                # Both from the same processes: an import measured in another process can take
                # longer than a whole render under CPU contention.
                "import_s": round(statistics.median(s["import_s"] for s in samples), 3),
                "render_s": round(statistics.median(s["wall_s"] - s["import_s"] for s in samples), 3),
                "peak_rss_mb": round(statistics.median(s["peak_rss_mb"] for s in samples), 1),
            })
        first, second = Path(tmp) / "again-1", Path(tmp) / "again-2"
        _run_child("reference", first)
        _run_child("reference", second)
        report["rerender_identical"] = (first / "plan.json").read_bytes() == (second / "plan.json").read_bytes()
    report["import_s"] = round(report["import_s"], 3)
    report |= blast_radius()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'size':>10} {'workstations':>12} {'models':>6} {'resources':>9} {'wall_s':>7} {'-import':>8} {'rss_mb':>7} {'depth':>5}")
    for r in report["runs"]:
        print(f"{r['size']:>10} {r['workstations']:>12} {r['models']:>6} {r['resources']:>9} {r['wall_s']:>7.2f} "
              f"{r['render_s']:>8.2f} {r['peak_rss_mb']:>7.1f} {r['depth']:>5}")
    print(f"import_s={report['import_s']} rerender_identical={report['rerender_identical']} "
          f"add_model_changed={report['add_model_changed']} add_workstation_changed={report['add_workstation_changed']} "
          f"({', '.join(report['add_workstation_changed_names'])})")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
