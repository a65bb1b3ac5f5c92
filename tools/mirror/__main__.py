"""`python -m tools.mirror --stack dev` (what `make mirror` runs): the mirror manifest of a stack,
every artifact its hosts and the operator fetch (docs/airgap.md), as JSON.

On a connected machine, `--resolve` (`RESOLVE=1`) first writes the stack's image lock
(stacks/locks/<stack>.yaml: each tag-only image's digest), and `--layout DIR` (`LAYOUT=DIR`) fetches
every artifact of the manifest into DIR, laid out to carry to the site (tools/mirror/layout.py).
`--source PREFIX=URL` (`SOURCES=...`) fetches what upstream names PREFIX from URL instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from stacks.load import ConfigError
from tools.mirror.layout import VALID_DAYS
from tools.render.__main__ import PROJECT_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mirror", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name: Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="manifest file (default build/<stack>/mirror-manifest.json)")
    parser.add_argument("--resolve", action="store_true", help="resolve tag-only images to digests into stacks/locks/<stack>.yaml first")
    parser.add_argument("--layout", type=Path, help="fetch every artifact into this directory, laid out for the site's mirror")
    parser.add_argument("--source", action="append", default=[], help="PREFIX=URL: fetch what upstream names PREFIX from URL")
    parser.add_argument("--locks", type=Path, help="the folder of image locks (default stacks/locks/): review a lock before it goes in")
    parser.add_argument("--release", default="noble", help="the hosts' Ubuntu codename, for the apt repository of --layout")
    parser.add_argument("--keyring", type=Path, help="keyring that verifies the upstream apt repositories (default: the machine's)")
    parser.add_argument("--sign-key", help="gpg key that signs the laid-out apt repositories (the key the stack's mirrors give as signedBy)")
    parser.add_argument("--valid-days", type=int, default=VALID_DAYS, help="days the laid-out apt repositories' Release stays valid (Valid-Until); re-sign before")
    args = parser.parse_args(argv)
    out = args.out or PROJECT_DIR / "build" / args.stack / "mirror-manifest.json"

    from stacks import images
    from stacks.images import lock_path, write_lock
    from stacks.load import validate
    from tools.mirror.manifest import manifest
    from tools.mirror.sources_map import parse
    from tools.render.evaluate import evaluate_stack_file, raw_stack_config

    if args.locks is not None:
        images.LOCKS = args.locks.resolve()  # read by the render below, too
    try:
        sources = parse(args.source)
        if args.resolve:
            from tools.mirror.lock import resolve, resolve_files, to_lock
            cfg = validate(raw_stack_config(PROJECT_DIR, args.stack))
            refs, files = to_lock(cfg), resolve_files(cfg, sources)
            write_lock(lock_path(args.stack), args.stack, resolve(refs, sources), files)
            print(f"mirror: {len(refs)} image(s) and {len(files)} file(s) of stack '{args.stack}' locked by digest -> {lock_path(args.stack)}")
        ev = evaluate_stack_file(PROJECT_DIR, args.stack)
    except (ConfigError, OSError, ValueError, RuntimeError) as err:
        for problem in getattr(err, "problems", [str(err)]):
            print(f"mirror: Pulumi.{args.stack}.yaml: {problem}", file=sys.stderr)
        return 2
    doc = manifest(ev)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"mirror: manifest of stack '{args.stack}' -> {out}")
    if args.layout is not None:
        from tools.mirror.layout import lay_out
        try:
            lay_out(doc, args.layout, sources, args.release, args.keyring, args.sign_key, args.valid_days)
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as err:
            print(f"mirror: layout: {err}", file=sys.stderr)
            return 2
        print(f"mirror: the artifacts of stack '{args.stack}' laid out in {args.layout} (docs/airgap.md: how to carry it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
