"""The URNs a `pulumi preview --json` plans to delete, one per line (README, Losing the seed).

`pulumi preview --json | python3 tools/planned_deletes.py` reads the CLI's PreviewDigest
(`steps[].op`, `steps[].urn`: pulumi pkg/display/json.go) and prints the URNs of its
`delete` steps, for `pulumi state delete` once their delete cannot run (a lost host).
Standard library only: it runs wherever the CLI does.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def planned_deletes(digest: dict[str, Any]) -> list[str]:
    """The URNs of the digest's delete steps, in the engine's order."""
    return [step["urn"] for step in digest.get("steps") or [] if step.get("op") == "delete"]


def main() -> int:
    try:
        digest = json.load(sys.stdin)
    except json.JSONDecodeError as err:
        print(f"planned_deletes: stdin is not the JSON of `pulumi preview --json` ({err})", file=sys.stderr)
        return 2
    print("\n".join(planned_deletes(digest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
