"""The mesh in the plan: dependencies on exactly the topology's peers, operator peer, MTU, scripts."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.kit.shell import compose, split_command
from components.vpn.wireguard import MeshMember, WireGuardMeshArgs, render_config
from components.vpn.wireguard_check import CONFIG_LINE, HostOutputError, public_key
from components.vpn.wireguard_topology import Peer
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal

OPERATOR_KEY = "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="  # 32 bytes, base64


def key_deps(ev: Evaluation) -> dict[str, set[str]]:
    by_urn = {r.urn: r for r in ev.resources}
    return {
        r.name.removeprefix("mesh-").removesuffix("-wg"): {
            by_urn[d].name.removeprefix("mesh-").removesuffix("-wg-key") for d in r.dependencies if by_urn[d].name.endswith("-wg-key")
        }
        for r in ev.resources if r.type == "command:remote:Command" and r.name.endswith("-wg")
    }


def two_site_config() -> dict[str, Any]:
    raw = stack_config("dev")
    raw["sites"].append({"name": "garage", "kind": "on-prem", "nat": True, "lanCidr": "198.51.100.64/26"})
    raw["hosts"].append({
        "name": "ws-3", "site": "garage", "roles": ["worker"], "existing": {"address": "198.51.100.71"},
        "ssh": {"hostKey": raw["hosts"][4]["ssh"]["hostKey"]}, "vpnAddress": "100.64.2.1", "gpu": {"model": "rtx-3090"},
    })
    return raw


def test_dev_mesh_configs_depend_on_exactly_their_peers_keys() -> None:
    deps = key_deps(evaluate_config(stack_config("dev")))
    everyone = {"vpn-hub", "receipt", "interface", "ws-1", "ws-2"}
    assert deps == {h: everyone for h in everyone}  # one NAT'd site: everyone peers everyone


def test_cross_site_workstations_do_not_depend_on_each_other() -> None:
    deps = key_deps(evaluate_config(two_site_config()))
    assert deps["ws-1"] == {"vpn-hub", "receipt", "interface", "ws-1", "ws-2"}
    assert deps["ws-3"] == {"vpn-hub", "receipt", "interface", "ws-3"}
    assert deps["vpn-hub"] == {"vpn-hub", "receipt", "interface", "ws-1", "ws-2", "ws-3"}


def test_configs_carry_no_private_key_and_route_other_sites_via_the_hub() -> None:
    ev = evaluate_config(two_site_config())
    configs = ev.outputs["vpn"]["publicKeys"]
    assert set(configs) == {"vpn-hub", "receipt", "interface", "ws-1", "ws-2", "ws-3"}
    ws1 = ev.by_name("mesh-ws-1-wg")
    _, params = split_command(ws1.inputs["create"])
    config = params["WG_CONFIG"]
    assert "PrivateKey" not in config.replace("PrivateKey is added on the host", "")
    hub_peer = config.split("# vpn-hub:")[1].split("[Peer]")[0]
    assert "AllowedIPs = 100.64.0.1/32, 100.64.2.1/32" in hub_peer
    assert "PersistentKeepalive = 25" in hub_peer and "Endpoint = 203.0.113.10:51820" in hub_peer


def test_operator_peer_and_client_config() -> None:
    raw = stack_config("dev")
    raw["vpn"]["operatorPublicKey"] = OPERATOR_KEY
    ev = evaluate_config(raw)
    _, hub = split_command(ev.by_name("mesh-vpn-hub-wg").inputs["create"])
    assert f"PublicKey = {OPERATOR_KEY}\nAllowedIPs = 100.64.255.254/32" in hub["WG_CONFIG"]
    _, ws1 = split_command(ev.by_name("mesh-ws-1-wg").inputs["create"])
    assert "AllowedIPs = 100.64.0.1/32, 100.64.255.254/32" in ws1["WG_CONFIG"]
    output = ev.outputs["vpn"]["operatorConfig"]
    assert isinstance(output, Secret)  # it maps the overlay and the hub's endpoint: secret output
    client = reveal(output)
    assert "Address = 100.64.255.254/32" in client and "Endpoint = 203.0.113.10:51820" in client
    assert "AllowedIPs = 100.64.0.0/16" in client
    assert not [line for line in client.splitlines() if line.startswith("PrivateKey")]


def test_cluster_mtu_sits_below_the_tunnel_mtu() -> None:
    raw = stack_config("dev")
    raw["vpn"]["mtu"] = 1400
    assert evaluate_config(raw).outputs["vpn"]["clusterMtu"] == 1350


def test_teardown_runs_on_destroy() -> None:
    ev = evaluate_config(stack_config("dev"))
    assert "wg-teardown.sh" in ev.by_name("mesh-ws-1-wg").inputs["delete"]
    assert "wg-key-remove.sh" in ev.by_name("mesh-ws-1-wg-key").inputs["delete"]


def test_key_steps_stream_nothing_to_the_cli() -> None:
    """What a key step prints is the host's (a compromised one's) to choose: pulumi-command 1.2.1
    streams a logged stream line by line through a 64 KiB scanner, and a longer line leaves its
    pipe undrained and the step hung for good (docs/upstream.md); the key steps log neither stream."""
    ev = evaluate_config(stack_config("dev"))
    steps = [r for r in ev.of_type("command:remote:Command") if r.name.endswith("-wg-key")]
    assert steps and {r.name: r.inputs.get("logging") for r in steps} == {r.name: "none" for r in steps}


def _run_without_wg(tmp_path: Path, script: str, config: str = "[Interface]\n") -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    shutil.rmtree(bin_dir, ignore_errors=True)
    bin_dir.mkdir()
    for tool in ("mkdir", "chmod", "mv", "cat", "awk", "mktemp", "rm", "hostname"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else f"/bin/{tool}")
    text = compose(script, {"WG_CONFIG": config})
    return subprocess.run(["/bin/bash", "-c", text, script], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30)


def test_keygen_on_a_host_without_wg_fails_clearly(tmp_path: Path) -> None:
    result = _run_without_wg(tmp_path, "wg-keygen.sh")
    assert result.returncode == 1
    assert "wg not found on this host; install wireguard-tools" in result.stderr


def test_apply_on_a_host_without_wg_fails_clearly(tmp_path: Path) -> None:
    result = _run_without_wg(tmp_path, "wg-apply.sh")
    assert result.returncode == 1
    assert "wg not found on this host; install wireguard-tools" in result.stderr


# --- What a host prints never reaches another host unchecked ---------------------------------

HONEST_KEY = base64.b64encode(bytes(range(32))).decode()
HOSTILE_OUTPUTS = {
    "extra-section": f"{HONEST_KEY}\n[Interface]\nPostUp = touch /tmp/pwned\n",
    "same-line-shell": f"{HONEST_KEY}; touch /tmp/pwned $(id) `id` | & \"'\n",
    "substitution-only": "$(touch /tmp/pwned)\n",
    "oversized": HONEST_KEY + "A" * 1_000_000 + "\n",
    "blank-line": "\n",
    "carriage-return": f"{HONEST_KEY}\r\n",
    "leading-space": f" {HONEST_KEY}\n",
    "two-keys": f"{HONEST_KEY}\n{HONEST_KEY}\n",
    "padding-bits-set": HONEST_KEY[:42] + "B=\n",  # wg refuses it too
    "33-bytes": base64.b64encode(bytes(33)).decode() + "\n",
}


def _peer_blocks(config: str) -> dict[str, str]:
    """{peer name: its [Peer] block}, by the comment the mesh writes under each header."""
    blocks = config.split("\n[Peer]\n")[1:]
    return {block.split(":", 1)[0].removeprefix("# "): block for block in blocks}


@pytest.mark.parametrize("printed", HOSTILE_OUTPUTS.values(), ids=HOSTILE_OUTPUTS.keys())
def test_a_host_printing_anything_but_its_key_fails_its_own_step_and_is_left_out_elsewhere(printed: str) -> None:
    honest = evaluate_config(stack_config("dev"))
    partial = Evaluation("test")
    with pytest.raises(HostOutputError) as caught:
        evaluate_config(stack_config("dev"), into=partial, command_stdout={"mesh-ws-2-wg-key": printed})
    message = str(caught.value)
    assert message.startswith("mesh-ws-2-wg-key: host 'ws-2' printed ") and "not one WireGuard public key" in message
    assert len(message) < 400  # the output itself is never echoed
    registered = {r.name for r in partial.resources}
    assert "mesh-ws-2-wg" not in registered  # its own step fails ...
    for host in ("vpn-hub", "receipt", "interface", "ws-1"):  # ... every peer loses exactly its entry
        _, sent = split_command(partial.by_name(f"mesh-{host}-wg").inputs["create"])
        _, before = split_command(honest.by_name(f"mesh-{host}-wg").inputs["create"])
        blocks, expected = _peer_blocks(sent["WG_CONFIG"]), _peer_blocks(before["WG_CONFIG"])
        assert "ws-2" in expected and blocks == {k: v for k, v in expected.items() if k != "ws-2"}, host
        assert sent["WG_CONFIG"].split("\n[Peer]\n")[0] == before["WG_CONFIG"].split("\n[Peer]\n")[0], host
    assert not [r.name for r in partial.resources if "pwned" in json.dumps(reveal(r.inputs))]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.binary(min_size=30, max_size=34).map(lambda b: base64.b64encode(b).decode() + "\n"))
def test_only_exactly_one_canonical_key_line_is_accepted(printed: str) -> None:
    key = public_key(printed)
    if key is not None:
        assert printed in (key, key + "\n")
        assert len(base64.b64decode(key, validate=True)) == 32 and base64.b64encode(base64.b64decode(key)).decode() == key


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_no_key_text_can_add_a_line_the_mesh_does_not_write(key: str) -> None:
    member = MeshMember("ws-1", "office", "100.64.1.1", target=None)  # type: ignore[arg-type]
    peer = Peer("vpn-hub", "public", ("100.64.0.1/32",), keepalive=True)
    try:
        text = render_config(member, WireGuardMeshArgs(members=[member], overlay_cidr="100.64.0.0/16"), HONEST_KEY, [(peer, key, "203.0.113.10")])
    except ValueError:
        return
    assert all(CONFIG_LINE.fullmatch(line) for line in text.splitlines())
    assert key == HONEST_KEY or public_key(key) == key


GRAMMAR_LINES = [
    "PostUp = touch /tmp/pwned", "postup = id", "PreUp=id", "SaveConfig = true", "Table = auto", "DNS = 1.1.1.1",
    "[interface]", "[Interface] ", "PrivateKey = " + HONEST_KEY, "PublicKey = " + HONEST_KEY + " ; id", "PublicKey = " + HONEST_KEY,
    "PublicKey = " + HONEST_KEY[:42] + "B=", "AllowedIPs = 0.0.0.0/0", "AllowedIPs = 100.64.0.1/32, 100.64.2.1/32",
    "AllowedIPs = 100.64.0.1/33", "AllowedIPs = 300.1.1.1/32", "Endpoint = 203.0.113.10:51820", "Endpoint = [2001:db8::1]:51820",
    "Endpoint = vpn.example.com:51820", "Endpoint = $(id):1", "Endpoint = a b:1", "# a comment", "# tab\there", "#\r",
    "Address = 100.64.1.1/16", "MTU = 1380", "ListenPort = 51820", "PersistentKeepalive = 25", "ListenPort = 5x", "",
]


def _shell_accepts(tmp_path: Path, line: str) -> bool:
    result = _run_without_wg(tmp_path, "wg-apply.sh", "[Interface]\n" + line + "\n")
    assert result.returncode == 1
    return "wg not found" in result.stderr  # got past the config check


def test_the_receiving_host_checks_the_same_grammar_as_the_program(tmp_path: Path) -> None:
    for line in GRAMMAR_LINES:
        expected = bool(CONFIG_LINE.fullmatch(line))
        assert _shell_accepts(tmp_path, line) == expected, line
    result = _run_without_wg(tmp_path, "wg-apply.sh", "[Interface]\n[Peer]\n[Interface]\nPostUp = id\n")
    assert "not a line the mesh writes" in result.stderr


def test_the_receiving_host_refuses_a_second_interface_section(tmp_path: Path) -> None:
    result = _run_without_wg(tmp_path, "wg-apply.sh", "[Interface]\n[Peer]\n[Interface]\n")
    assert result.returncode == 1 and "exactly one [Interface] section" in result.stderr


def test_every_config_of_the_plans_passes_the_receiving_hosts_check(tmp_path: Path) -> None:
    raw = two_site_config()
    raw["vpn"]["operatorPublicKey"] = OPERATOR_KEY
    for r in evaluate_config(raw).resources:
        if r.name.endswith("-wg"):
            _, params = split_command(r.inputs["create"])
            result = _run_without_wg(tmp_path, "wg-apply.sh", params["WG_CONFIG"])
            assert "wg not found" in result.stderr, (r.name, result.stderr)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_no_endpoint_text_can_add_a_line_the_mesh_does_not_write(endpoint: str) -> None:
    member = MeshMember("ws-1", "office", "100.64.1.1", target=None)  # type: ignore[arg-type]
    peer = Peer("vpn-hub", "public", ("100.64.0.1/32",), keepalive=True)
    args = WireGuardMeshArgs(members=[member], overlay_cidr="100.64.0.0/16")
    try:
        text = render_config(member, args, HONEST_KEY, [(peer, HONEST_KEY, endpoint)])
    except ValueError:
        return
    assert all(CONFIG_LINE.fullmatch(line) for line in text.splitlines())
    assert "\n" not in endpoint and "\r" not in endpoint


# --- A key printed by two hosts -----------------------------------------------------------------

def _stdout_of(ev: Evaluation, name: str) -> str:
    """What the mock printed for a key step (the honest run's key of that host)."""
    hub = ev.by_name("mesh-vpn-hub-wg")
    _, params = split_command(hub.inputs["create"])
    own = params["WG_CONFIG"] if name == "vpn-hub" else _peer_blocks(params["WG_CONFIG"])[name]
    marker = "# this host's public key: " if name == "vpn-hub" else "PublicKey = "
    return own.split(marker, 1)[1].split("\n", 1)[0] + "\n"


@pytest.mark.parametrize("victim", ["receipt", "vpn-hub"])
def test_a_host_printing_another_hosts_key_fails_every_step_that_would_hold_it_twice(victim: str) -> None:
    raw = two_site_config()
    honest = evaluate_config(raw)
    stolen = _stdout_of(honest, victim)
    partial = Evaluation("test")
    with pytest.raises(HostOutputError) as caught:
        evaluate_config(raw, into=partial, command_stdout={"mesh-ws-1-wg-key": stolen})
    assert "have the same WireGuard public key" in str(caught.value) and f"'{victim}'" in str(caught.value)
    assert "'ws-1'" in str(caught.value) and stolen.strip() not in str(caught.value)
    registered = {r.name for r in partial.resources}
    # ws-1 and the victim share a config with each other, and so does every host peering both.
    assert {"mesh-ws-1-wg", f"mesh-{victim}-wg", "mesh-interface-wg", "mesh-ws-2-wg"}.isdisjoint(registered)
    assert "mesh-ws-3-wg" in registered  # ws-3 (another site) does not peer ws-1: its config is unaffected
    for r in partial.resources:
        if r.name.endswith("-wg"):
            _, params = split_command(r.inputs["create"])
            assert params["WG_CONFIG"].count(f"PublicKey = {stolen.strip()}") <= 1, r.name


def test_a_host_printing_the_operators_key_fails_its_own_step_and_the_hubs() -> None:
    raw = stack_config("dev")
    raw["vpn"]["operatorPublicKey"] = OPERATOR_KEY
    partial = Evaluation("test")
    with pytest.raises(HostOutputError) as caught:
        evaluate_config(raw, into=partial, command_stdout={"mesh-ws-2-wg-key": OPERATOR_KEY + "\n"})
    assert "'operator' and 'ws-2' have the same WireGuard public key" in str(caught.value)
    registered = {r.name for r in partial.resources}
    assert {"mesh-ws-2-wg", "mesh-vpn-hub-wg"}.isdisjoint(registered)


def test_the_receiving_host_refuses_a_key_twice(tmp_path: Path) -> None:
    config = f"[Interface]\n[Peer]\nPublicKey = {HONEST_KEY}\n[Peer]\nPublicKey = {HONEST_KEY}\n"
    result = _run_without_wg(tmp_path, "wg-apply.sh", config)
    assert result.returncode == 1 and "the same PublicKey twice" in result.stderr
    other = base64.b64encode(bytes(range(1, 33))).decode()
    assert "wg not found" in _run_without_wg(tmp_path, "wg-apply.sh", config.replace(HONEST_KEY, other, 1)).stderr

