#!/usr/bin/env bash
# Netmaker API steps on the hub, authenticated with the master key read from stdin.
# ACTION is one of:
#   network         create NETWORK over ADDRESS_RANGE with MTU (kept if it exists)
#   network-remove  delete NETWORK
#   enrollment      print the token of a fresh enrollment key for NETWORK that expires after
#                   TTL_S seconds, tagged TAG-<8 hex> (Netmaker refuses a tag any key, spent
#                   or not, already has); the stack's older keys are deleted first. HOSTS (the
#                   member names) is not used here: it makes the step run again for a new host.
#   enrollment-revoke  delete every key of the stack (tagged TAG or TAG-<8 hex>)
#   address         give HOST_NAME's node the address ADDRESS (stable overlay addresses)
#   relay           make RELAY_HOST relay RELAYED_HOSTS (space-separated), NAT'd sites; the
#                   request is models.RelayRequest: {nodeid, netid, relayaddrs: [node ids]}
#   relay-remove    drop RELAY_HOST's relay
# Parameters: ACTION, NETWORK, and what the action needs; API defaults to the local server.
set -euo pipefail
shopt -s inherit_errexit  # a failed lookup inside $(...) stops the script
SCRIPT_NAME="netmaker-api"
: "${ACTION:?}" "${NETWORK:?}" "${API:=http://127.0.0.1:8081}" "${NM_DIR:=/opt/hybrid-ai/netmaker}"
IFS= read -r master_key || true
[ -n "$master_key" ] || fail "no master key on stdin"

# The master key goes to curl in a header file, never on a command line.
header=$(mktemp)
trap 'rm -f "$header"' EXIT
printf 'Authorization: Bearer %s\n' "$master_key" > "$header"
api() {  # api METHOD PATH [JSON]
  local args=(-fsS -X "$1" -H "@$header" -H "Content-Type: application/json" "$API$2")
  [ $# -ge 3 ] && args+=(--data "$3")
  retry curl "${args[@]}"
}
UUID='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
# Host names come from the hosts themselves: a lookup by name must find exactly one UUID.
lookup() {  # lookup WHAT < ids: the one id on stdin, or fail naming WHAT
  local ids
  ids=$(grep . || true)
  [ -n "$ids" ] || fail "$1 is not registered with Netmaker; its join step must run first"
  [ "$(grep -c . <<< "$ids")" -eq 1 ] || fail "$1: Netmaker has several; a host may have registered under another's name"
  grep -Eq "$UUID" <<< "$ids" || fail "$1: Netmaker returned a malformed id"
  printf '%s\n' "$ids"
}
node_id() {  # the node of host $1 in NETWORK
  local host_id
  host_id=$(api GET /api/hosts | jq -r --arg n "$1" '.[] | select(.name == $n) | .id' | lookup "host $1") || exit 1
  api GET "/api/nodes/$NETWORK" | jq -r --arg h "$host_id" '.[] | select(.hostid == $h) | .id' | lookup "host $1's node in $NETWORK"
}
valid_token() {  # Netmaker's enrollment token: base64 of {"server": ..., "value": ...}, nothing else
  local json
  [[ $1 =~ ^[A-Za-z0-9+/]+={0,2}$ ]] || return 1
  json=$(base64 -d <<< "$1" 2>/dev/null) || return 1
  jq -e 'type == "object" and (keys == ["server", "value"])
         and (.server | type == "string" and test("^[A-Za-z0-9.-]+(:[0-9]+)?$"))
         and (.value | type == "string" and test("^[A-Za-z0-9_-]{1,128}$"))' <<< "$json" >/dev/null 2>&1
}

ours() {  # the values of the stack's enrollment keys
  api GET /api/v1/enrollment-keys | jq -r --arg t "${TAG:?}" '.[]
    | select(any((.tags // [])[]; . == $t or (startswith($t + "-") and (.[($t | length) + 1:] | test("^[0-9a-f]{8}$")))))
    | .value'
}
revoke() {
  local keys key
  keys=$(ours)
  for key in $keys; do
    [[ $key =~ ^[A-Za-z0-9]+$ ]] || fail "Netmaker listed a malformed enrollment key value; not deleting it"
    api DELETE "/api/v1/enrollment-keys/$key" >/dev/null
  done
}

case $ACTION in
  network)
    if api GET "/api/networks/$NETWORK" >/dev/null 2>&1; then
      log "network $NETWORK exists"
    else
      api POST /api/networks "$(jq -nc --arg n "$NETWORK" --arg r "${ADDRESS_RANGE:?}" --argjson mtu "${MTU:-1380}" \
        '{netid: $n, addressrange: $r, defaultmtu: $mtu}')" >/dev/null
      changed+=("network")
    fi
    report ;;
  network-remove)
    api DELETE "/api/networks/$NETWORK" >/dev/null 2>&1 || true
    log "network $NETWORK removed" ;;
  enrollment)
    # Expiring, not counted: with uses_remaining > 0 Netmaker keeps the uses and drops the
    # expiration, so the key would stay valid for good (logic/enrollmentkey.go).
    revoke
    tag="$TAG-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
    token=$(api POST /api/v1/enrollment-keys "$(jq -nc --arg n "$NETWORK" --arg t "$tag" \
      --argjson exp "$(( $(date +%s) + ${TTL_S:?} ))" \
      '{networks: [$n], tags: [$t], uses_remaining: 0, expiration: $exp, unlimited: false, type: 1}')" | jq -r '.token // empty')
    [ -n "$token" ] || fail "Netmaker returned no enrollment token"
    valid_token "$token" || fail "Netmaker returned a malformed enrollment token (not base64 of {server, value}); not passing it on"
    printf '%s\n' "$token" ;;  # a secret: the program hides this output
  enrollment-revoke)
    revoke
    log "enrollment keys of $TAG revoked" ;;
  address)
    : "${ADDRESS:?}"
    id=$(node_id "${HOST_NAME:?}")
    current=$(api GET "/api/nodes/$NETWORK/$id" | jq -r '.address // empty')
    if [ "${current%%/*}" != "${ADDRESS%%/*}" ]; then
      api PUT "/api/nodes/$NETWORK/$id" "$(api GET "/api/nodes/$NETWORK/$id" | jq -c --arg a "$ADDRESS" '.address = $a')" >/dev/null
      changed+=("address")
    fi
    echo "address=$ADDRESS"
    report ;;
  relay)
    relay=$(node_id "${RELAY_HOST:?}")
    relayed=()
    for host in ${RELAYED_HOSTS:-}; do
      id=$(node_id "$host")
      relayed+=("$id")
    done
    api POST "/api/nodes/$NETWORK/$relay/createrelay" \
      "$(jq -nc --arg n "$NETWORK" --arg id "$relay" '{netid: $n, nodeid: $id, relayaddrs: $ARGS.positional}' --args "${relayed[@]}")" >/dev/null
    echo "relay=$RELAY_HOST relayed=${RELAYED_HOSTS:-none}" ;;
  relay-remove)
    relay=$(node_id "${RELAY_HOST:?}") || { log "no relay node for $RELAY_HOST; nothing to remove"; exit 0; }
    api DELETE "/api/nodes/$NETWORK/$relay/deleterelay" >/dev/null 2>&1 || true ;;
  *) fail "unknown ACTION '$ACTION'" ;;
esac
