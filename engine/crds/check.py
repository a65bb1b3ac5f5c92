"""Compare generated CRDs with the ones upstream publishes, then write them out one per file.

Usage: check.py GENERATED REFERENCE PATTERN OUT
  GENERATED  the directory generate.sh wrote (one or more CRDs per file)
  REFERENCE  upstream's published CRDs for the same version, in the module cache (read only)
  PATTERN    a reference file's name, with {group} and {plural}
  OUT        where each CRD is written, as <group>_<plural>.yaml

Fails (exit 1) unless each generated CRD has upstream's name, group, names, scope and versions
(name, served, storage, subresources, printer columns, schema). Metadata annotations and labels
may differ (tool versions, Helm templating): they are reported, and labels holding Helm template
text (cert-manager's envelopes) are dropped, since an API server refuses them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def _crds(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                found.append(document)
    return found


def _differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = []
        for key in sorted(set(ours) | set(theirs), key=str):
            if key not in theirs:
                out.append(f"{where}.{key}: only in ours")
            elif key not in ours:
                out.append(f"{where}.{key}: only upstream's")
            else:
                out += _differences(ours[key], theirs[key], f"{where}.{key}")
        return out
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if ours == theirs else [f"{where}: {_short(ours)} != upstream's {_short(theirs)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def main(generated: str, reference: str, pattern: str, out: str) -> int:
    crds = _crds(Path(generated))
    if not crds:
        print(f"check: no CRD in {generated}", file=sys.stderr)
        return 1
    failed = False
    for crd in crds:
        spec = crd["spec"]
        name = crd["metadata"]["name"]
        ref_path = Path(reference) / pattern.format(group=spec["group"], plural=spec["names"]["plural"])
        upstream = [c for c in _crds_in(ref_path) if c["metadata"]["name"] == name]
        if not upstream:
            print(f"check: {name}: upstream publishes no such CRD in {ref_path}", file=sys.stderr)
            failed = True
            continue
        differences = _differences(spec, upstream[0]["spec"], "spec")
        for line in differences[:20]:
            print(f"check: {name}: {line}", file=sys.stderr)
        failed = failed or bool(differences)
        for key in ("annotations", "labels"):
            ours, theirs = crd["metadata"].get(key, {}), upstream[0]["metadata"].get(key, {})
            if ours != theirs:
                print(f"check: {name}: metadata.{key} differ (not checked): {_short(ours)} vs {_short(theirs)}")
        labels = {k: v for k, v in crd["metadata"].get("labels", {}).items() if "{{" not in str(v)}
        crd["metadata"].pop("labels", None)
        if labels:
            crd["metadata"]["labels"] = labels
        crd.pop("status", None)
        versions = ", ".join(
            f"{v['name']}{'' if v['served'] else ' (not served)'}{' (storage)' if v['storage'] else ''}" for v in spec["versions"]
        )
        if not differences:
            print(f"check: {name} matches upstream's ({versions})")
        target = Path(out) / f"{spec['group']}_{spec['names']['plural']}.yaml"
        target.write_text(yaml.safe_dump(crd, sort_keys=False))
    return 1 if failed else 0


def _crds_in(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    # cert-manager's envelopes wrap Helm directives in comments; the YAML itself is plain.
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
