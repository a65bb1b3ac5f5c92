"""One side of `make diff`: evaluate a checked-out tree's stack and write what a diff needs.

Run as a script with the tree's root (`python snapshot.py --root TREE --stack dev --out DIR`,
an HMAC key on stdin): it imports that tree's own render code, so BASE is rendered by BASE's
program. It writes DIR/resources.json (every resource's inputs, each secret replaced by
`{"[secret]": HMAC(key, value)}` so both sides compare equal exactly when the secret is
equal, and nothing of it can be read back) and DIR/artifacts/ (the tree's own writer).

A `secure:` value cannot be decrypted offline; the render stands a placeholder in for it.
Here the placeholder also carries an HMAC of the ciphertext, so changing a secret in the
stack file changes the secret inputs built from it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

SECRET = "[secret]"
NAMESPACE = "hybrid-ai"


def _module(name: str) -> ModuleType:
    """The tree's render module (`tools.render` once the render moves there, else `stacks.render`)."""
    for package in ("tools.render", "stacks.render"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name is None or not package.startswith(err.name):
                raise
    raise ModuleNotFoundError(f"no render module {name!r} in this tree")


def digest(key: bytes, value: Any) -> str:
    return hmac.new(key, json.dumps(value, sort_keys=True, default=str).encode(), hashlib.sha256).hexdigest()


def masked(value: Any, key: bytes, secret_type: type, reveal: Any) -> Any:
    if isinstance(value, secret_type):
        return {SECRET: digest(key, reveal(value))}
    if isinstance(value, dict):
        return {k: masked(v, key, secret_type, reveal) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key, secret_type, reveal) for v in value]
    return value


def _config(path: Path, key: bytes) -> tuple[dict[str, str], set[str]]:
    stackfile = _module("stackfile")
    config, secret = stackfile.stack_file_config(path)
    raw = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    for full in secret:
        value = raw.get(full)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = stackfile.placeholder(f"{full} {digest(key, value['secure'])[:32]}")
    return config, set(secret)


def snapshot(root: Path, stack: str, out: Path, key: bytes) -> None:
    evaluate = _module("evaluate")
    write = _module("write")
    path = root / f"Pulumi.{stack}.yaml"
    out.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # A stack this side does not have: everything is created (or deleted) by the other.
        (out / "resources.json").write_text("{}")
        (out / "absent").write_text(f"no {path.name}\n")
        return
    config, secret = _config(path, key)
    ev = evaluate.evaluate(stack, config, secret, fill_missing_secrets=True)
    (out / "resources.json").write_text(json.dumps(records(ev, key, evaluate.Secret, write.reveal), sort_keys=True, indent=1))
    write.artifacts(ev, out / "artifacts")


def records(ev: Any, key: bytes, secret_type: type, reveal: Any) -> dict[str, Any]:
    """What a diff compares of each resource, by URN: type, name, masked inputs, and dependencies
    (with the provider each resource is managed by: a replaced provider replaces them)."""
    return {r.urn: {"type": r.type, "name": r.name, "inputs": masked(r.inputs, key, secret_type, reveal),
                    "dependencies": list(getattr(r, "dependencies", []))}
            for r in ev.resources}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    key = bytes.fromhex(sys.stdin.readline().strip())
    sys.path.insert(0, str(args.root.resolve()))
    config_error = importlib.import_module("stacks.load").ConfigError
    try:
        snapshot(args.root, args.stack, args.out, key)
    except config_error as err:
        for problem in err.problems:
            print(f"diff: Pulumi.{args.stack}.yaml: {problem}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"diff: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
