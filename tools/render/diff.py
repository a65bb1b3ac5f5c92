"""`make diff BASE=<git ref>`: what `pulumi preview --diff` would show between BASE and the
working tree, offline (no CLI, no state, no credentials).

Both sides are rendered by their own program (BASE from a temporary `git worktree`, removed
afterwards, run with this venv) and compared by URN: resources to create, update (with the
changed input paths), replace (see tools.render.replace) and delete, then each host's
scripts and files as unified diffs. A secret is shown only as [secret], never its value.
Exit code: 0 nothing changes, 1 something changes, 2 the diff could not be made.
"""

from __future__ import annotations

import argparse
import difflib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.render.replace import KUBERNETES_PROVIDER, modelled, provider_replacing, replacing
from tools.render.snapshot import SECRET

PROJECT_DIR = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("snapshot.py")
NOT_MODELLED = "(replacement rules of this type are not modelled: it may be replaced)"


class DiffError(Exception):
    pass


@dataclass
class Changes:
    create: list[tuple[str, str]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)
    update: list[tuple[str, str, list[str]]] = field(default_factory=list)
    replace: list[tuple[str, str, list[str]]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Unified diffs of the per-host artifacts."""

    def empty(self) -> bool:
        return not (self.create or self.delete or self.update or self.replace or self.files)


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SECRET}


def _show(value: Any) -> str:
    if _is_secret(value):
        return SECRET
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # numbers lose their int type on the wire (protobuf)
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def changed_paths(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) of every leaf that differs; a secret is one leaf."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and not _is_secret(old) and not _is_secret(new):
        out = []
        for k in sorted(old.keys() | new.keys()):
            out += changed_paths(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in changed_paths(a, b, f"{path}[{i}]")]
    return [(path, old, new)]


def _describe(path: str, old: Any, new: Any) -> str:
    if _is_secret(old) or _is_secret(new):
        return f"{path}: {SECRET}"
    if path in ("create", "update", "delete") and isinstance(new, str):
        return f"{path}: (script, below)"
    return f"{path}: {_show(old)} => {_show(new)}"


def compare(before: Path, after: Path) -> Changes:
    old = json.loads((before / "resources.json").read_text())
    new = json.loads((after / "resources.json").read_text())
    changes = Changes()
    changes.create = sorted((new[u]["type"], new[u]["name"]) for u in new.keys() - old.keys())
    changes.delete = sorted((old[u]["type"], old[u]["name"]) for u in old.keys() - new.keys())
    found: dict[str, tuple[bool, list[str]]] = {}
    """URN -> (replaced, lines) of each resource in both plans that changes."""
    for urn in sorted(old.keys() & new.keys()):
        type_ = new[urn]["type"]
        diffs = changed_paths(old[urn]["inputs"], new[urn]["inputs"])
        if not diffs:
            continue
        lines = [_describe(*d) for d in diffs]
        forcing = replacing(type_, [p for p, _, _ in diffs])
        if forcing:
            found[urn] = (True, [*lines, f"replaced because of: {', '.join(forcing)}"])
        else:
            found[urn] = (False, [*lines, *([] if modelled(type_) else [NOT_MODELLED])])
    _replace_under_providers(old, new, found)
    for urn in sorted(found):
        replaced, lines = found[urn]
        (changes.replace if replaced else changes.update).append((new[urn]["type"], new[urn]["name"], lines))
    changes.files = _file_diffs(before / "artifacts" / "hosts", after / "artifacts" / "hosts")
    return changes


def _replace_under_providers(old: dict[str, Any], new: dict[str, Any], found: dict[str, tuple[bool, list[str]]]) -> None:
    """A replaced Kubernetes provider, and every resource it manages (each lists it among its
    dependencies), become replacements in `found`."""
    touched = set(found) | (new.keys() - old.keys())
    for urn in sorted(old.keys() & new.keys()):
        if new[urn]["type"] != KUBERNETES_PROVIDER:
            continue
        sources = sorted(new[d]["name"] for d in new[urn].get("dependencies", []) if d in touched)
        paths = [p for p, _, _ in changed_paths(old[urn]["inputs"], new[urn]["inputs"])]
        why = provider_replacing(old[urn]["inputs"], new[urn]["inputs"], paths, sources)
        if not why:
            continue
        found[urn] = (True, [*found.get(urn, (True, []))[1], f"replaced because of: {', '.join(why)}"])
        for managed in sorted(u for u in old.keys() & new.keys() if urn in new[u].get("dependencies", [])):
            lines = [line for line in found.get(managed, (True, []))[1] if line != NOT_MODELLED]
            found[managed] = (True, [*lines, f"replaced because its provider {new[urn]['name']} is replaced"])


def _file_diffs(before: Path, after: Path) -> list[str]:
    def files(root: Path) -> dict[str, Path]:
        return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()} if root.exists() else {}

    old, new = files(before), files(after)
    out = []
    for rel in sorted(old.keys() | new.keys()):
        a = old[rel].read_text().splitlines(keepends=True) if rel in old else []
        b = new[rel].read_text().splitlines(keepends=True) if rel in new else []
        if a != b:
            out.append("".join(difflib.unified_diff(a, b, f"a/hosts/{rel}" if a else "/dev/null", f"b/hosts/{rel}" if b else "/dev/null")))
    return out


def report(changes: Changes) -> str:
    lines = []
    for sign, word, items in (("+", "create", changes.create), ("-", "delete", changes.delete)):
        lines += [f"{sign} {word:8} {t} {n}" for t, n in items]
    for sign, word, detailed in (("~", "update", changes.update), ("+-", "replace", changes.replace)):
        for t, n, paths in detailed:
            lines.append(f"{sign} {word:8} {t} {n}")
            lines += [f"      {p}" for p in paths]
    counts = (f"{len(changes.create)} to create, {len(changes.update)} to update, "
              f"{len(changes.replace)} to replace, {len(changes.delete)} to delete")
    lines.append(f"Resources: {counts}" if not changes.empty() else "Resources: no changes")
    if changes.files:
        lines += ["", "Host scripts and files:", *changes.files]
    return "\n".join(lines) + "\n"


def _snapshot(root: Path, stack: str, out: Path, key: str, what: str) -> None:
    """Render `root`'s stack with its own program, in a process of its own (this venv)."""
    done = subprocess.run([sys.executable, str(SNAPSHOT), "--root", str(root), "--stack", stack, "--out", str(out)],
                          input=key + "\n", cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DiffError(f"rendering {what} failed: {last}")


def _git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DiffError(f"git {args[0]} {args[1] if len(args) > 1 else ''}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")


def _remove_worktree(repo: Path, tree: Path) -> None:
    """Even when BASE failed to render; a registration whose folder is gone is pruned."""
    try:
        _git(repo, "worktree", "remove", "--force", str(tree))
    except DiffError:
        shutil.rmtree(tree, ignore_errors=True)
        _git(repo, "worktree", "prune")


def diff(base: str, stack: str, repo: Path = PROJECT_DIR) -> Changes:
    # A fresh key per run: both sides' secret digests compare, and are worthless afterwards.
    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="hybrid-ai-diff-") as tmp:
        tree = Path(tmp) / "base"
        try:
            _git(repo, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        except DiffError:
            raise DiffError(f"BASE {base!r} is no commit of {repo}") from None
        _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), base)
        try:
            _snapshot(tree, stack, Path(tmp) / "before", key, f"BASE ({base})")
        finally:
            _remove_worktree(repo, tree)
        _snapshot(repo, stack, Path(tmp) / "after", key, "the working tree")
        if (Path(tmp) / "before" / "absent").exists() and (Path(tmp) / "after" / "absent").exists():
            raise DiffError(f"no Pulumi.{stack}.yaml at BASE nor in the working tree")
        return compare(Path(tmp) / "before", Path(tmp) / "after")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make diff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git ref to compare the working tree with (BASE=...)")
    parser.add_argument("--stack", default="dev", help="stack name: Pulumi.<stack>.yaml on both sides")
    parser.add_argument("--repo", type=Path, default=PROJECT_DIR, help="the project's working tree (default: this one)")
    args = parser.parse_args(argv)
    try:
        changes = diff(args.base, args.stack, args.repo.resolve())
    except DiffError as err:
        print(f"diff: {err}", file=sys.stderr)
        return 2
    print(f"Stack {args.stack}: {args.base} -> working tree")
    print(report(changes), end="")
    return 0 if changes.empty() else 1


if __name__ == "__main__":
    sys.exit(main())
