"""Write an Evaluation out for review: plan.json, graph.mmd, graph.svg and artifacts/.

Every value the program marked secret is written as "[secret]". Artifacts are read from
the same registrations, plain values as they are (plan.json shows them too); where one is
built from a secret-marked value (a VM's cloud-init carries its host key, a command's
connection its login key), the secret parts are replaced before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from components.kit.shell import split_command
from tools.mirror.manifest import FILE, manifest
from tools.render.evaluate import Evaluation, Registration, Secret
from tools.render.plan import redact as redact  # re-exported: the tests and tools read them from the writer
from tools.render.plan import reveal as reveal
from tools.render.scrub import SECRET, Scrubber


def plan(ev: Evaluation) -> dict[str, Any]:
    return {
        "stack": ev.stack,
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent,
             "dependencies": r.dependencies, "inputs": redact(r.inputs)}
            for r in sorted(ev.resources, key=lambda r: r.urn)
        ],
        "outputs": redact(ev.outputs),
    }


@cache  # asked once per edge end (~36,000 times at 100/40) for ~1,700 URNs
def _node_id(urn: str) -> str:
    return "n" + re.sub(r"[^A-Za-z0-9]", "_", urn.rsplit("::", 1)[-1])


def mermaid(ev: Evaluation) -> str:
    """Resources as nodes (grouped by parent component), dependencies as arrows."""
    lines = ["flowchart LR"]
    children: dict[str | None, list[Registration]] = {}
    for r in sorted(ev.resources, key=lambda r: r.urn):
        children.setdefault(r.parent, []).append(r)

    def emit(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            pad = "  " * depth
            if r.custom:
                lines.append(f'{pad}{_node_id(r.urn)}["{r.name}<br/><small>{r.type}</small>"]')
            else:
                lines.append(f'{pad}subgraph {_node_id(r.urn)}["{r.name}"]')
                emit(r.urn, depth + 1)
                lines.append(f"{pad}end")

    roots = {r.parent for r in ev.resources} - {r.urn for r in ev.resources}
    for root in sorted(roots, key=lambda x: x or ""):
        emit(root, 1)
    for r in sorted(ev.resources, key=lambda r: r.urn):
        for dep in r.dependencies:
            lines.append(f"  {_node_id(dep)} --> {_node_id(r.urn)}")
    return "\n".join(lines) + "\n"


def dot(ev: Evaluation) -> str:
    """The graph folded to top-level components (a host, a mesh, a model...): thousands of
    resources would be unreadable, and Graphviz's layout grows faster than linearly."""
    by_urn = {r.urn: r for r in ev.resources}

    def top(urn: str) -> str:
        r = by_urn[urn]
        while r.parent in by_urn:
            r = by_urn[r.parent]
        return r.urn

    nodes = sorted({top(u) for u in by_urn})
    edges = sorted({(top(d), top(r.urn)) for r in ev.resources for d in r.dependencies if d in by_urn} - {(n, n) for n in nodes})
    lines = ["digraph plan {", "  rankdir=LR;", '  node [shape=box, fontsize=10, fontname="sans-serif"];']
    lines += [f'  {_node_id(u)} [label="{by_urn[u].name}\\n{by_urn[u].type}"];' for u in nodes]
    lines += [f"  {_node_id(a)} -> {_node_id(b)};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


# Cheap layout: no spline routing, bounded ranking and crossing-minimisation passes.
DOT_FLAGS = ["-Gsplines=line", "-Gnslimit=0.5", "-Gnslimit1=0.5", "-Gmclimit=0.05", "-Gremincross=false"]


def _host_names(ev: Evaluation) -> dict[str, str]:
    """SSH address -> host name, from each host's `<name>-reachable` probe."""
    names = {}
    for r in ev.of_type("command:remote:Command"):
        if r.name.endswith("-reachable"):
            names[str(reveal(r.inputs["connection"])["host"])] = r.name.removesuffix("-reachable")
    return names


class FileWriter:
    """Writes files with one open, write and close each (Python's text files added an fstat,
    an ioctl and two lseeks per file: ~7,800 syscalls at 100/40), making each folder once.
    A worker thread to overlap the kernel's part measured no faster on 2 shared cores (its
    GIL hand-offs cost ~16,000 futex calls), so this writes in the calling thread."""

    def __init__(self) -> None:
        self._made: set[Path] = set()

    def write(self, path: Path, text: str) -> None:
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    """open, write, close: what `Path.write_bytes` does without the buffered file object."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def artifacts(ev: Evaluation, out: Path, files: FileWriter | None = None) -> list[Path]:
    """What the plan puts on hosts: scripts per host, WireGuard configs, cloud-init documents."""
    files = files or FileWriter()
    written: list[Path] = []
    hosts = _host_names(ev)
    scrub = Scrubber(ev.secret_values)

    def write(rel: str, text: str) -> None:
        path = out / rel
        files.write(path, text)
        written.append(path)

    for r in ev.of_type("command:remote:Command"):
        conn = reveal(r.inputs["connection"])  # secret as a whole: it holds the login key
        address, host_key = scrub(str(conn["host"])), scrub(str(conn.get("hostKey", "NO")))
        host = hosts.get(str(conn["host"]), address)
        header = f"# resource: {r.name}\n# host: {host} ({address}), host key pinned: {host_key}\n"
        for phase in ("create", "update", "delete"):
            value = r.inputs.get(phase)
            if value is None:
                continue
            if isinstance(value, Secret):
                write(f"hosts/{host}/{r.name}.{phase}.sh", header + "# (the whole command is secret)\n")
                continue
            script, params = split_command(value)
            write(f"hosts/{host}/{r.name}.{phase}.sh", header + script)
            if "WG_CONFIG" in params:
                write(f"hosts/{host}/wg0.conf", params["WG_CONFIG"])
        if "stdin" in r.inputs:
            write(f"hosts/{host}/{r.name}.stdin", SECRET + "\n" if isinstance(r.inputs["stdin"], Secret) else str(r.inputs["stdin"]))

    for r in ev.of_type("openstack:compute/instance:Instance"):
        user_data = reveal(r.inputs.get("userData", ""))
        doc = yaml.safe_load(user_data.removeprefix("#cloud-config\n")) or {}
        keys = doc.get("ssh_keys", {})
        for k in keys:
            if k.endswith("_private"):
                keys[k] = SECRET
        # String by string (YAML may fold or escape a secret), then the text: a value YAML reads
        # back as a number or a date is no string.
        write(f"hosts/{r.inputs.get('name', r.name)}/cloud-init.yaml", scrub("#cloud-config\n" + _yaml(scrub.deep(doc))))

    for r in ev.resources:
        if r.type.startswith("kubernetes:") and r.custom:
            # A patch (server-side apply of some fields of an object someone else made) is no
            # whole manifest: apart, so that validators of manifests pass it over.
            folder = "kubernetes-patches" if r.type.endswith("Patch") else "kubernetes"
            write(f"{folder}/{r.name}.yaml", _yaml(_integral(redact(_secret_keys_shown(r)))))
    return written


def _secret_keys_shown(r: Registration) -> dict[str, Any]:
    """pulumi-kubernetes marks a Secret's whole `data`/`stringData` secret; write its keys (names,
    not values) each as "[secret]", so the manifest stays a valid Secret for the validators."""
    if r.type != "kubernetes:core/v1:Secret":
        return dict(r.inputs)
    inputs = dict(r.inputs)
    for field in ("data", "stringData"):
        value = inputs.get(field)
        if isinstance(value, Secret) and isinstance(value.value, dict):
            inputs[field] = {k: SECRET for k in value.value}
    return inputs


# libyaml's emitter when PyYAML has it (several times faster on big plans).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_DUMPER, sort_keys=True, default_flow_style=False)


def _integral(value: Any) -> Any:
    """Numbers lose their int type on the wire (protobuf); give manifests their integers back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _svg(graph: str) -> str:
    return subprocess.run(["dot", "-Tsvg", *DOT_FLAGS], input=graph, capture_output=True, text=True, check=True).stdout


def write_all(ev: Evaluation, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Graphviz lays out in its own process while this one writes the rest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        svg = pool.submit(_svg, dot(ev)) if shutil.which("dot") else None
        files = FileWriter()
        artifacts(ev, out / "artifacts", files)
        files.write(out / "artifacts" / FILE, json.dumps(manifest(ev), indent=2, sort_keys=True) + "\n")
        files.write(out / "graph.mmd", mermaid(ev))
        with (out / "plan.json").open("w", encoding="utf-8") as f:
            # Streamed: the whole text at once took ~50 MB more at 200/80 (same bytes as json.dumps).
            f.writelines(json.JSONEncoder(indent=2, sort_keys=True).iterencode(plan(ev)))
            f.write("\n")
        if svg is not None:
            (out / "graph.svg").write_text(svg.result())
