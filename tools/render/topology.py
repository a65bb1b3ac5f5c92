"""The system at a glance: topology.mmd (Mermaid) and topology.svg (Graphviz).

Sites are groups; each host shows its roles, GPU kind and time-slicing replicas, whether it
sits behind NAT, and the models that may run on it. Tunnels come from the mesh's own rules
(`components.vpn.wireguard_topology.plan`) and are drawn per pair of sites with their count, so
the picture stays readable at 20 hosts: "direct" tunnels, and pairs that talk "via <hub>".
With the Netmaker backend its server decides the routes, so the picture says only that.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.vpn.wireguard_topology import Node, plan
from stacks.config import Host, Role, StackConfig
from stacks.load import validate
from tools.render.evaluate import Evaluation, raw_stack_config
from tools.render.placement import placement
from tools.render.write import DOT_FLAGS

NETMAKER = "Netmaker mesh (its server picks the routes)"


@dataclass(frozen=True)
class Tunnels:
    direct: int
    via_hub: int


def stack_config(project_dir: Path, stack: str) -> StackConfig:
    """The validated config of a stack file the program has just evaluated; `secure:` entries
    (the secrets hosts name) are no schema keys."""
    raw = raw_stack_config(project_dir, stack)
    return validate({k: v for k, v in raw.items() if not (isinstance(v, dict) and set(v) == {"secure"})})


def mesh_node(cfg: StackConfig, h: Host) -> Node:
    """The node as the WireGuard mesh sees it (stacks.build.build_mesh): a public endpoint
    when the host has a public address; a LAN endpoint for OpenStack VMs (their private
    network address) and for existing hosts with a LAN address."""
    lan = h.openstack is not None or cfg.lan_address(h) is not None
    return Node(h.name, h.site, ipaddress.IPv4Address(cfg.vpn_address(h)), cfg.has_public_endpoint(h), lan,
                Role.VPN_HUB.value in h.roles)


def tunnels(cfg: StackConfig) -> dict[tuple[str, str], Tunnels]:
    """(site, site) in name order -> tunnels between their hosts, per the mesh's plan."""
    peers = plan([mesh_node(cfg, h) for h in cfg.hosts])
    site = {h.name: h.site for h in cfg.hosts}
    counts: dict[tuple[str, str], list[int]] = {}
    names = sorted(site)
    for i, a in enumerate(names):
        direct = {p.name for p in peers[a]}
        for b in names[i + 1:]:
            key = (min(site[a], site[b]), max(site[a], site[b]))
            counts.setdefault(key, [0, 0])[0 if b in direct else 1] += 1
    return {k: Tunnels(d, v) for k, (d, v) in sorted(counts.items())}


def _id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", name)


def host_lines(cfg: StackConfig, h: Host, models: list[str]) -> list[str]:
    lines = [h.name, "roles: " + ", ".join(sorted(str(r) for r in h.roles))]
    if h.gpu is not None:
        lines.append(f"GPU: {h.gpu.model} x{h.gpu.count}, time-slicing x{cfg.replicas_of(h)}")
    lines.append("public endpoint" if cfg.has_public_endpoint(h) else "behind NAT")
    if models:
        lines.append("models: " + ", ".join(models))
    return lines


def site_label(cfg: StackConfig, name: str, inside: Tunnels | None) -> str:
    """The site, and the tunnels between its own hosts (an edge to itself would be clutter)."""
    s = cfg.site(name)
    label = f"site {s.name} ({s.kind}{', NAT' if s.nat else ''})"
    if inside is not None:
        label += f"; inside: {_kinds(cfg, inside)}"
    return label


def _kinds(cfg: StackConfig, t: Tunnels) -> str:
    if cfg.vpn.backend == "netmaker":
        return NETMAKER
    direct = f"direct x{t.direct}" if t.direct else ""
    via = f"via {_hub(cfg)} x{t.via_hub}" if t.via_hub else ""
    return ", ".join(x for x in (direct, via) if x)


def _hub(cfg: StackConfig) -> str:
    return next((h.name for h in cfg.hosts if Role.VPN_HUB.value in h.roles), "hub")


def _edges(cfg: StackConfig, pairs: dict[tuple[str, str], Tunnels]) -> list[tuple[str, str, str, bool]]:
    """(site, site, label, dashed) for every kind of tunnel between two sites."""
    out = []
    for (a, b), t in pairs.items():
        if a == b:
            continue
        if cfg.vpn.backend == "netmaker":
            out.append((a, b, NETMAKER, False))
            continue
        if t.direct:
            out.append((a, b, _kinds(cfg, Tunnels(t.direct, 0)), False))
        if t.via_hub:
            out.append((a, b, _kinds(cfg, Tunnels(0, t.via_hub)), True))
    return out


def mermaid(ev: Evaluation, cfg: StackConfig) -> str:
    placed, pairs = placement(ev, cfg), tunnels(cfg)
    lines = ["flowchart LR"]
    for s in cfg.sites:
        lines.append(f'  subgraph {_id("s_", s.name)}["{site_label(cfg, s.name, pairs.get((s.name, s.name)))}"]')
        for h in (h for h in cfg.hosts if h.site == s.name):
            lines.append(f'    {_id("h_", h.name)}["{"<br/>".join(host_lines(cfg, h, placed[h.name]))}"]')
        lines.append("  end")
    for a, b, label, dashed in _edges(cfg, pairs):
        arrow = "-.-" if dashed else "---"
        lines.append(f"  {_id('s_', a)} {arrow}|{label}| {_id('s_', b)}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(ev: Evaluation, cfg: StackConfig) -> str:
    placed, pairs = placement(ev, cfg), tunnels(cfg)
    lines = ["graph topology {", "  compound=true; rankdir=LR;",
             '  node [shape=box, fontsize=10, fontname="sans-serif"]; edge [fontsize=9, fontname="sans-serif"];']
    first: dict[str, str] = {}
    for s in cfg.sites:
        lines += [f"  subgraph cluster_{_id('s_', s.name)} {{", f'    label="{_dot_text(site_label(cfg, s.name, pairs.get((s.name, s.name))))}";']
        for h in (h for h in cfg.hosts if h.site == s.name):
            first.setdefault(s.name, _id("h_", h.name))
            label = "\\n".join(_dot_text(x) for x in host_lines(cfg, h, placed[h.name]))
            lines.append(f'    {_id("h_", h.name)} [label="{label}"];')
        lines.append("  }")
    for a, b, label, dashed in _edges(cfg, pairs):
        style = ", style=dashed" if dashed else ""
        ends = f"ltail=cluster_{_id('s_', a)}, lhead=cluster_{_id('s_', b)}, "
        lines.append(f'  {first[a]} -- {first[b]} [{ends}label="{_dot_text(label)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_topology(ev: Evaluation, cfg: StackConfig, out: Path) -> list[Path]:
    """topology.mmd always; topology.svg where Graphviz is installed."""
    written = [out / "topology.mmd"]
    written[0].write_text(mermaid(ev, cfg))
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg", *DOT_FLAGS], input=dot(ev, cfg), capture_output=True, text=True, check=True).stdout
        (out / "topology.svg").write_text(svg)
        written.append(out / "topology.svg")
    return written
