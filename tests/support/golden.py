"""Golden digests of the example stacks' renders (`tests/golden/renders.json`).

The layout of the code may change; what the program plans may not, unless on purpose. Each
example stack is rendered as `make render` does, and every file's sha256 is kept, except
`graph.svg` and `topology.svg`, which name the Graphviz version that drew them.

Refresh after an intended change (and review the diff of plan and artifacts first):
`.venv/bin/python -m tests.support.golden` (or `make golden`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.helpers import PROJECT

STACKS = ("airgap", "dev", "ha", "netmaker", "prod", "llm")
GOLDEN = PROJECT / "tests" / "golden" / "renders.json"
UNSTABLE = ("graph.svg", "topology.svg")


def render(stack: str, out: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"render of {stack} failed: {result.stderr.strip()}")


def digests(out: Path) -> dict[str, str]:
    """sha256 of every rendered file under `out`, by its path relative to `out`."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name not in UNSTABLE}


def current(stack: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        render(stack, Path(tmp))
        return digests(Path(tmp))


def main() -> None:
    GOLDEN.parent.mkdir(exist_ok=True)
    from tools.docs import write_if_changed

    changed = write_if_changed(GOLDEN, json.dumps({stack: current(stack) for stack in STACKS}, indent=1, sort_keys=True) + "\n")
    print(f"{GOLDEN.relative_to(PROJECT)}: {'written' if changed else 'unchanged'}")


if __name__ == "__main__":
    main()
