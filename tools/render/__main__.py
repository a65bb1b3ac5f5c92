"""`python -m tools.render --stack dev --out build/dev` (what `make render` runs)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stacks.load import ConfigError, shown

if TYPE_CHECKING:
    from tools.render.plan import Evaluation

PROJECT_DIR = Path(__file__).resolve().parents[2]
# What a render writes (tools/render/write.py, topology.py), and `make mirror`'s manifest beside it
# (tools/mirror/manifest.py FILE): a folder holding only these is a previous render, the one kind
# of folder `make render OUT=...` may replace or remove.
RENDER_ENTRIES = frozenset({"plan.json", "graph.mmd", "graph.svg", "topology.mmd", "topology.svg", "artifacts", "mirror-manifest.json"})


def not_a_render(folder: Path) -> str | None:
    """Why `folder` may not be replaced by a render (None when it is absent or a previous render)."""
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return "is not a folder"
    strangers = sorted(p.name for p in folder.iterdir() if p.name not in RENDER_ENTRIES)
    return f"holds files a render does not write ({', '.join(shown(n) for n in strangers[:3])}{', ...' if len(strangers) > 3 else ''})" if strangers else None


def render(directory: Path, stack: str, out: Path) -> Evaluation | None:
    """Render `Pulumi.<stack>.yaml` of `directory` into `out`; None (and one line per problem on
    stderr) when it does not render."""
    from tools.render.evaluate import evaluate_stack_file
    from tools.render.topology import stack_config, write_topology
    from tools.render.write import write_all

    # Written beside `out` and swapped in whole; on any failure the previous render goes too,
    # so no build/<stack>/ is left that looks like this config's plan.
    partial = out.with_name(f".{out.name}.partial")
    for folder in (out, partial):
        if (why := not_a_render(folder)) is not None:
            print(f"render: {folder} {why}; nothing was removed. Give OUT a new folder or a previous render's", file=sys.stderr)
            return None
    try:
        ev = evaluate_stack_file(directory, stack)
        for warning in ev.warnings:
            print(f"render: warning: {warning}", file=sys.stderr)
        write_all(ev, partial)
        write_topology(ev, stack_config(directory, stack), partial)
    except BaseException as err:
        shutil.rmtree(partial, ignore_errors=True)
        if out.exists():
            shutil.rmtree(out)
            print(f"render: removed the previous {out} (it is not this config's plan)", file=sys.stderr)
        if isinstance(err, ConfigError):
            # One line per problem; file-level ones already start with the file name (and line).
            file = f"Pulumi.{stack}.yaml"
            for problem in err.problems:
                print(f"render: {problem if problem.startswith(file) else f'{file}: {problem}'}", file=sys.stderr)
            return None
        if isinstance(err, FileNotFoundError):
            print(f"render: Pulumi.{stack}.yaml: {err}", file=sys.stderr)
            return None
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    print(f"render: {len(ev.resources)} resources for stack '{stack}' -> {out}/plan.json, graph.mmd, topology.mmd, artifacts/")
    return ev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make render", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name: renders Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="output folder (default build/<stack>)")
    parser.add_argument("--dir", type=Path, default=PROJECT_DIR, help="folder holding Pulumi.<stack>.yaml (default: the project)")
    args = parser.parse_args(argv)
    return 0 if render(args.dir, args.stack, args.out or PROJECT_DIR / "build" / args.stack) is not None else 2


if __name__ == "__main__":
    sys.exit(main())
