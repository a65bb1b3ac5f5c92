"""netmaker-api.sh against a stub of Netmaker's API: the network, enrollment keys (TTL, tags,
revocation), addresses and the relay, idempotent, with no master key or token on a command line."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.netmaker import GOOD_TOKEN, IDS, MASTER, token_of
from tests.support.stubs import StubHost

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


def api_host(tmp_path: Path, **env: str) -> StubHost:
    # curl gets the header file as "-H @file": the stub records where it is to check the key.
    curl = 'for a in "$@"; do case $a in @*) echo "${a#@}" > "$STATE/header-file";; esac; done\n' + API_STUB
    return StubHost(tmp_path, stubs={"curl": curl}, env={**IDS, "GOOD_TOKEN": GOOD_TOKEN, **env})


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
