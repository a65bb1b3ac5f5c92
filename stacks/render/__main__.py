"""`python -m stacks.render --stack dev --out build/dev` (what `make render` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stacks.load import ConfigError

PROJECT_DIR = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make render", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name: renders Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<stack>)")
    args = parser.parse_args(argv)
    out = args.out or PROJECT_DIR / "build" / args.stack

    from stacks.render.evaluate import evaluate_stack_file
    from stacks.render.write import write_all

    try:
        ev = evaluate_stack_file(PROJECT_DIR, args.stack)
    except (ConfigError, FileNotFoundError) as err:
        print(f"render: Pulumi.{args.stack}.yaml: {err}", file=sys.stderr)
        return 2
    for warning in ev.warnings:
        print(f"render: warning: {warning}", file=sys.stderr)
    write_all(ev, out)
    print(f"render: {len(ev.resources)} resources for stack '{args.stack}' -> {out}/plan.json, graph.mmd, artifacts/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
