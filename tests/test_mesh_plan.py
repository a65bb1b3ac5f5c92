"""The mesh in the plan: dependencies on exactly the topology's peers, operator peer, MTU, scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from components.shell import compose
from stacks.render.evaluate import Evaluation
from stacks.render.write import split_script
from tests.helpers import evaluate_config, stack_config

OPERATOR_KEY = "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="  # 32 bytes, base64


def key_deps(ev: Evaluation) -> dict[str, set[str]]:
    by_urn = {r.urn: r for r in ev.resources}
    return {
        r.name.removeprefix("mesh-").removesuffix("-wg"): {
            by_urn[d].name.removeprefix("mesh-").removesuffix("-wg-key") for d in r.dependencies if by_urn[d].name.endswith("-wg-key")
        }
        for r in ev.resources if r.type == "command:remote:Command" and r.name.endswith("-wg")
    }


def two_site_config() -> dict:
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
    _, params = split_script(ws1.inputs["create"])
    config = params["WG_CONFIG"]
    assert "PrivateKey" not in config.replace("PrivateKey is added on the host", "")
    hub_peer = config.split("# vpn-hub:")[1].split("[Peer]")[0]
    assert "AllowedIPs = 100.64.0.1/32, 100.64.2.1/32" in hub_peer
    assert "PersistentKeepalive = 25" in hub_peer and "Endpoint = 203.0.113.10:51820" in hub_peer


def test_operator_peer_and_client_config() -> None:
    raw = stack_config("dev")
    raw["vpn"]["operatorPublicKey"] = OPERATOR_KEY
    ev = evaluate_config(raw)
    _, hub = split_script(ev.by_name("mesh-vpn-hub-wg").inputs["create"])
    assert f"PublicKey = {OPERATOR_KEY}\nAllowedIPs = 100.64.255.254/32" in hub["WG_CONFIG"]
    _, ws1 = split_script(ev.by_name("mesh-ws-1-wg").inputs["create"])
    assert "AllowedIPs = 100.64.0.1/32, 100.64.255.254/32" in ws1["WG_CONFIG"]
    client = ev.outputs["vpn"]["operatorConfig"]
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


def _run_without_wg(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "chmod", "mv", "cat", "awk", "mktemp", "rm", "hostname"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else f"/bin/{tool}")
    text = compose(script, {"WG_CONFIG": "[Interface]\n"})
    return subprocess.run(["/bin/bash", "-c", text, script], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30)


def test_keygen_on_a_host_without_wg_fails_clearly(tmp_path: Path) -> None:
    result = _run_without_wg(tmp_path, "wg-keygen.sh")
    assert result.returncode == 1
    assert "wg not found on this host; install wireguard-tools" in result.stderr


def test_apply_on_a_host_without_wg_fails_clearly(tmp_path: Path) -> None:
    result = _run_without_wg(tmp_path, "wg-apply.sh")
    assert result.returncode == 1
    assert "wg not found on this host; install wireguard-tools" in result.stderr
