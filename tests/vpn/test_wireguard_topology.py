"""The NAT-aware topology as properties over random fleets, plus the reference cases."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.vpn.wireguard_topology import OPERATOR, Node, TopologyError, plan


@st.composite
def fleets(draw: st.DrawFn) -> list[Node]:
    n_public = draw(st.integers(1, 4))
    sites = draw(st.lists(st.integers(1, 5), min_size=0, max_size=4))  # workstations per NAT'd site
    nodes = [Node(f"c{i}", "cloud", ipaddress.IPv4Address(f"100.64.0.{i + 1}"), public=True, lan=draw(st.booleans()), hub=i == 0)
             for i in range(n_public)]
    for s, count in enumerate(sites):
        lan = draw(st.booleans())
        nodes += [Node(f"s{s}w{w}", f"site{s}", ipaddress.IPv4Address(f"100.64.{s + 1}.{w + 1}"), public=False, lan=lan)
                  for w in range(count)]
    return nodes


def routes(peers: dict[str, list[Any]], node: str) -> dict[str, str]:
    """Overlay address -> the peer that carries it, for one node."""
    table: dict[str, str] = {}
    for p in peers[node]:
        for ip in p.allowed_ips:
            assert ip not in table, f"{node}: {ip} is in two peers' AllowedIPs"
            table[ip] = p.name
    return table


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_every_node_can_reach_every_other_in_at_most_two_hops(nodes: list[Node]) -> None:
    peers = plan(nodes)
    by_name = {n.name: n for n in nodes}
    for a in nodes:
        table = routes(peers, a.name)
        for b in nodes:
            if a is b:
                continue
            via = table[f"{b.address}/32"]
            if via != b.name:
                assert by_name[via].hub  # only the hub relays
                assert f"{b.address}/32" in routes(peers, via) and routes(peers, via)[f"{b.address}/32"] == b.name


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_direct_links_are_symmetric_and_someone_can_dial(nodes: list[Node]) -> None:
    peers = plan(nodes)
    for a in nodes:
        for p in peers[a.name]:
            back = [q for q in peers[p.name] if q.name == a.name]
            assert back, f"{a.name} peers {p.name} but not the other way round"
            assert p.endpoint is not None or back[0].endpoint is not None, f"neither {a.name} nor {p.name} can dial"


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_nat_side_keeps_alive_and_public_side_does_not(nodes: list[Node]) -> None:
    peers = plan(nodes)
    for a in nodes:
        for p in peers[a.name]:
            assert p.keepalive == (not a.public and p.endpoint is not None)


def test_reference_site_layout() -> None:
    hub = Node("hub", "cloud", ipaddress.IPv4Address("100.64.0.1"), public=True, lan=False, hub=True)
    w1 = Node("w1", "a", ipaddress.IPv4Address("100.64.1.1"), public=False, lan=True)
    w2 = Node("w2", "a", ipaddress.IPv4Address("100.64.1.2"), public=False, lan=True)
    w3 = Node("w3", "b", ipaddress.IPv4Address("100.64.2.1"), public=False, lan=True)
    peers = plan([hub, w1, w2, w3], operator=ipaddress.IPv4Address("100.64.255.254"))
    w1_peers = {p.name: p for p in peers["w1"]}
    assert set(w1_peers) == {"hub", "w2"}
    assert w1_peers["w2"].endpoint == "lan"
    assert w1_peers["hub"].allowed_ips == ("100.64.0.1/32", "100.64.2.1/32", "100.64.255.254/32")
    assert {p.name for p in peers["hub"]} == {"w1", "w2", "w3", OPERATOR}
    assert all(p.endpoint is None for p in peers["hub"])


def test_two_nat_sites_without_a_hub_are_rejected() -> None:
    w1 = Node("w1", "a", ipaddress.IPv4Address("100.64.1.1"), public=False, lan=True)
    w3 = Node("w3", "b", ipaddress.IPv4Address("100.64.2.1"), public=False, lan=True)
    with pytest.raises(TopologyError, match="no hub"):
        plan([w1, w3])
