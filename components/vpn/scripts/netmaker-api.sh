#!/usr/bin/env bash
# Netmaker API steps on the hub, authenticated with the master key read from stdin.
# ACTION is one of:
#   network         create NETWORK over ADDRESS_RANGE with MTU (kept if it exists)
#   network-remove  delete NETWORK
#   enrollment      print a valid enrollment key tagged TAG for NETWORK, creating one with
#                   USES uses that expires after TTL_S seconds if there is none
#   enrollment-revoke  delete every enrollment key tagged TAG
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
    token=$(api GET /api/v1/enrollment-keys | jq -r --arg t "${TAG:?}" --argjson now "$(date +%s)" \
      '[.[] | select((.tags // []) | index($t)) | select(.uses_remaining > 0)] | first | .token // empty')
    if [ -z "$token" ]; then
      token=$(api POST /api/v1/enrollment-keys "$(jq -nc --arg n "$NETWORK" --arg t "$TAG" \
        --argjson uses "${USES:?}" --argjson exp "$(( $(date +%s) + ${TTL_S:?} ))" \
        '{networks: [$n], tags: [$t], uses_remaining: $uses, expiration: $exp, unlimited: false, type: 2}')" | jq -r .token)
    fi
    [ -n "$token" ] || fail "Netmaker returned no enrollment token"
    valid_token "$token" || fail "Netmaker returned a malformed enrollment token (not base64 of {server, value}); not passing it on"
    printf '%s\n' "$token" ;;  # a secret: the program hides this output
  enrollment-revoke)
    for key in $(api GET /api/v1/enrollment-keys | jq -r --arg t "${TAG:?}" '.[] | select((.tags // []) | index($t)) | .value'); do
      api DELETE "/api/v1/enrollment-keys/$key" >/dev/null
    done
    log "enrollment keys tagged $TAG revoked" ;;
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
