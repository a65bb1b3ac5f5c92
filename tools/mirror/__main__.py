"""`python -m tools.mirror --stack dev` (what `make mirror` runs): the mirror manifest of a stack,
every artifact its hosts and the operator fetch (docs/airgap.md), as JSON.

It writes the manifest only. Laying out the mirror itself (an OCI layout of the images, a chart
repository index, the snap files, an apt repository) needs the sources reachable and is done on
a connected machine with the tools docs/airgap.md names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stacks.load import ConfigError
from tools.render.__main__ import PROJECT_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mirror", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name: Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="manifest file (default build/<stack>/mirror-manifest.json)")
    args = parser.parse_args(argv)
    out = args.out or PROJECT_DIR / "build" / args.stack / "mirror-manifest.json"

    from tools.mirror.manifest import manifest
    from tools.render.evaluate import evaluate_stack_file

    try:
        ev = evaluate_stack_file(PROJECT_DIR, args.stack)
    except (ConfigError, FileNotFoundError) as err:
        for problem in getattr(err, "problems", [str(err)]):
            print(f"mirror: Pulumi.{args.stack}.yaml: {problem}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest(ev), indent=2, sort_keys=True) + "\n")
    print(f"mirror: manifest of stack '{args.stack}' -> {out}; the mirror's layout itself is made on a connected machine (docs/airgap.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
