"""The URNs of a lost host's resources that `pulumi preview --json` plans to delete, one per
line (docs/operations.md, Losing the seed).

`pulumi preview --json | python3 tools/planned_deletes.py <host>` reads the CLI's PreviewDigest
(`steps[].op`, `steps[].urn`: pulumi pkg/display/json.go) and prints the URNs of its `delete`
steps, for `pulumi state delete` once their delete cannot run. It prints nothing and exits 1
when the preview would replace anything (a replaced Kubernetes provider replaces every object it
manages: stop there) or plans a delete whose name does not name the host (it would be forgotten
instead of deleted). Standard library only: it runs wherever the CLI does.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

REPLACING = ("replace", "create-replacement", "delete-replaced")


class Refused(Exception):
    pass


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def planned_deletes(digest: dict[str, Any], host: str) -> list[str]:
    """The URNs of the digest's delete steps, in the engine's order, all of them `host`'s."""
    steps = digest.get("steps") or []
    replaced = sorted({_name(s["urn"]) for s in steps if s.get("op") in REPLACING})
    if replaced:
        raise Refused(f"the preview replaces {', '.join(replaced)}; stop and resolve that first (docs/operations.md, Losing the seed)")
    own = re.compile(rf"(^|-){re.escape(host)}(-|$)")
    deletes = [s["urn"] for s in steps if s.get("op") == "delete"]
    others = [_name(u) for u in deletes if not own.search(_name(u))]
    if others:
        raise Refused(f"the preview also deletes {', '.join(others)}, which are not {host}'s; remove only the lost host in this change")
    return deletes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", args[0]):
        print("usage: pulumi preview --json | python3 tools/planned_deletes.py <lost host name>", file=sys.stderr)
        return 2
    try:
        print("\n".join(planned_deletes(json.load(sys.stdin), args[0])))
    except json.JSONDecodeError as err:
        print(f"planned_deletes: stdin is not the JSON of `pulumi preview --json` ({err})", file=sys.stderr)
        return 2
    except Refused as err:
        print(f"planned_deletes: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
