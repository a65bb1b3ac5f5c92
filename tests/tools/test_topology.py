"""topology.mmd / topology.svg: what the picture says, checked against the plan itself."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from stacks.load import validate
from tests.support.helpers import evaluate_config, stack_config, unavailable
from tools.render.__main__ import main as render_main
from tools.render.fleet import fleet
from tools.render.placement import fits
from tools.render.topology import dot, mermaid, tunnels, write_topology
from tools.render.write import artifacts

SVG = "{http://www.w3.org/2000/svg}"


def _mmd(text: str) -> tuple[dict[str, str], dict[str, list[str]], list[tuple[str, str, str, str]]]:
    """Subgraph id -> label, host id -> label lines, and (from, arrow, label, to) edges."""
    sites = dict(re.findall(r'^\s*subgraph (\S+)\["([^"]*)"\]', text, re.M))
    hosts = {k: v.split("<br/>") for k, v in re.findall(r'^\s{4}(h_\S+)\["([^"]*)"\]', text, re.M)}
    edges = re.findall(r"^\s*(s_\S+) (---|-\.-)\|([^|]*)\| (s_\S+)$", text, re.M)
    return sites, hosts, edges


def _svg(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Node title -> its text lines; every edge's label."""
    root = ET.parse(path).getroot()
    nodes: dict[str, list[str]] = {}
    edges: list[str] = []
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        texts = [t.text or "" for t in g.iter(f"{SVG}text")]
        if g.get("class") == "node" and title is not None:
            nodes[title.text or ""] = texts
        elif g.get("class") == "edge":
            edges += texts
    return nodes, edges


def test_dev_picture_shows_sites_hosts_gpus_nat_tunnels_and_models(tmp_path: Path) -> None:
    assert render_main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    sites, hosts, edges = _mmd((tmp_path / "topology.mmd").read_text())
    assert sites == {"s_cloud": "site cloud (cloud); inside: direct x3",
                     "s_office": "site office (on-prem, NAT); inside: direct x1"}
    assert hosts["h_ws_1"] == ["ws-1", "roles: worker", "GPU: rtx-3090 x1, time-slicing x4", "behind NAT",
                               "models: layout-engine, ocr-detector, ocr-engine, ocr-recognizer"]
    assert hosts["h_receipt"] == ["receipt", "roles: control-plane, ingress", "public endpoint", "models: receipt-api"]
    # The hub is no Kubernetes node: nothing runs there.
    assert hosts["h_vpn_hub"] == ["vpn-hub", "roles: vpn-hub", "public endpoint"]
    # 3 cloud hosts x 2 workstations, all direct (every cloud host has a public endpoint).
    assert edges == [("s_cloud", "---", "direct x6", "s_office")]
    if not shutil.which("dot"):
        unavailable("Graphviz `dot` is not installed: topology.svg is not drawn")
    nodes, edge_labels = _svg(tmp_path / "topology.svg")
    assert nodes["h_ws_2"] == hosts["h_ws_2"]
    assert set(nodes) == set(hosts)
    assert edge_labels == ["direct x6"]


def _three_sites() -> dict[str, Any]:
    raw = fleet(workstations=17, models=6)  # 3 cloud hosts + 17 workstations in two NAT'd sites
    interface = next(h for h in raw["hosts"] if h["name"] == "interface")
    interface["taints"] = [{"key": "example.com/dedicated", "value": "ingress", "effect": "NoSchedule"}]
    return raw


@pytest.fixture(scope="module")
def three_sites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    raw = _three_sites()
    ev = evaluate_config(raw)
    out = tmp_path_factory.mktemp("three-sites")
    artifacts(ev, out / "artifacts")
    write_topology(ev, validate(raw), out)
    return out, (ev, validate(raw))


def test_twenty_hosts_in_three_sites_route_nat_to_nat_through_the_hub(three_sites: tuple[Path, Any]) -> None:
    out, _ = three_sites
    sites, hosts, edges = _mmd((out / "topology.mmd").read_text())
    assert len(sites) == 3 and len(hosts) == 20
    assert set(edges) == {
        ("s_cloud", "---", "direct x30", "s_office_0"),
        ("s_cloud", "---", "direct x21", "s_office_1"),
        ("s_office_0", "-.-", "via vpn-hub x70", "s_office_1"),
    }
    assert sites["s_office_0"] == "site office-0 (on-prem, NAT); inside: direct x45"
    # A tainted cloud node takes no model that does not tolerate the taint.
    assert not any(line.startswith("models:") for line in hosts["h_interface"])
    assert "models: receipt-api" in hosts["h_receipt"]


def test_picture_tunnels_are_the_tunnels_the_mesh_configures(three_sites: tuple[Path, Any]) -> None:
    """Every direct tunnel in the picture is a [Peer] in both hosts' rendered wg0.conf."""
    out, (_, cfg) = three_sites
    pairs = set()
    for conf in (out / "artifacts" / "hosts").glob("*/wg0.conf"):
        for peer in re.findall(r"^\[Peer\]\n# ([a-z0-9-]+):", conf.read_text(), re.M):
            if peer != "operator":
                pairs.add(frozenset((conf.parent.name, peer)))
    assert len(pairs) == sum(t.direct for t in tunnels(cfg).values())


def test_twenty_host_picture_stays_small(three_sites: tuple[Path, Any]) -> None:
    out, (ev, cfg) = three_sites
    assert mermaid(ev, cfg).count("---") + mermaid(ev, cfg).count("-.-") == 3  # edges per site pair, not per host pair
    assert dot(ev, cfg).count(" -- ") == 3
    if not shutil.which("dot"):
        unavailable("Graphviz `dot` is not installed: topology.svg is not drawn")
    nodes, _ = _svg(out / "topology.svg")
    assert len(nodes) == 20
    width, height = (float(x) for x in ET.parse(out / "topology.svg").getroot().get("viewBox", "").split()[2:])
    assert width < 2000 and height < 3000


@pytest.mark.parametrize(("pod", "labels", "taints", "expected"), [
    ({"nodeSelector": {"hybrid-ai/location": "cloud"}}, {"hybrid-ai/location": "cloud"}, [], True),
    ({"nodeSelector": {"hybrid-ai/location": "cloud"}}, {"hybrid-ai/location": "on-prem"}, [], False),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "hybrid-ai/gpu-model", "operator": "Exists"}]}]}}}}, {}, [], False),
    ({}, {}, [{"key": "gpu", "value": "", "effect": "NoSchedule"}], False),
    ({}, {}, [{"key": "gpu", "value": "", "effect": "PreferNoSchedule"}], True),
    ({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "", "effect": "NoSchedule"}]}, {},
     [{"key": "gpu", "value": "", "effect": "NoSchedule"}], True),
    ({"tolerations": [{"operator": "Exists"}]}, {}, [{"key": "x", "value": "y", "effect": "NoExecute"}], True),
])
def test_fits_reads_selectors_affinity_and_taints_like_the_scheduler(
    pod: dict[str, Any], labels: dict[str, str], taints: list[dict[str, str]], expected: bool,
) -> None:
    assert fits(pod, labels, taints) is expected


def test_every_example_stack_draws(tmp_path: Path) -> None:
    for stack in ("dev", "prod", "netmaker"):
        raw = stack_config(stack)
        text = mermaid(evaluate_config(raw), validate(raw))
        assert text.count("subgraph ") == len(raw["sites"]), stack


def test_the_operations_page_shows_the_dev_topology_as_rendered() -> None:
    raw = stack_config("dev")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "```mermaid\n" + mermaid(evaluate_config(raw), validate(raw)) + "```" in doc


def test_a_stack_file_with_secure_values_still_draws(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(text + "  hybrid-ai:sshPrivateKey:\n    secure: v1:AAAA/CANARY==\n")
    assert render_main(["--stack", "dev", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert "subgraph s_office" in (tmp_path / "out" / "topology.mmd").read_text()


def test_netmaker_routes_are_not_guessed() -> None:
    raw = stack_config("netmaker")
    sites, _, edges = _mmd(mermaid(evaluate_config(raw), validate(raw)))
    assert edges == [("s_cloud", "---", "Netmaker mesh (its server picks the routes)", "s_office")]
    assert all(label.endswith("; inside: Netmaker mesh (its server picks the routes)") for label in sites.values())
