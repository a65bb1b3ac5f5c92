#!/usr/bin/env bash
# netclient on this host, joined to NETWORK with the stack's enrollment token (on stdin).
# Idempotent: an installed netclient and a joined network are left as they are.
# Parameters: HOST_NAME, NETWORK, NETCLIENT_VERSION, IFACE.
set -euo pipefail
SCRIPT_NAME="netclient"
: "${NETWORK:?}" "${NETCLIENT_VERSION:?}" "${IFACE:=netmaker}"
: "${KEYRING:=/usr/share/keyrings/netmaker-keyring.gpg}" "${SOURCES:=/etc/apt/sources.list.d/netclient.list}"
IFS= read -r token || true
[ -n "$token" ] || fail "no enrollment token on stdin"
# Netmaker's tokens are base64; anything else is refused before it reaches a command line.
[[ $token =~ ^[A-Za-z0-9+/]+={0,2}$ ]] || fail "the enrollment token on stdin is not base64; not using it"
# `netclient list` prints JSON ({"network": "<name>", ...} per network); match the name exactly.
joined() { netclient list 2>/dev/null | grep -Fq "\"network\": \"$NETWORK\""; }

if ! command -v netclient >/dev/null; then
  if [ ! -s "$SOURCES" ]; then
    key=$(mktemp)
    retry curl -fsSL -o "$key" https://apt.netmaker.org/gpg.key || fail "could not download Netmaker's repository key"
    gpg --batch --yes --dearmor -o "$KEYRING" "$key"
    rm -f "$key"
    echo "deb [signed-by=$KEYRING] https://apt.netmaker.org stable main" > "$SOURCES"
  fi
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get -o DPkg::Lock::Timeout=120 update -q || fail "apt-get update failed"
  retry apt-get -o DPkg::Lock::Timeout=120 install -y -q "netclient=${NETCLIENT_VERSION#v}*" \
    || fail "could not install netclient $NETCLIENT_VERSION"
  changed+=("netclient")
fi
if ! joined; then
  # netclient takes the token only as `join -t` (no stdin, file or environment): it is on
  # that command line while each of up to 3 calls (10 s apart) runs, and nowhere else. `join` exits 0 even when
  # registration fails, so success is what `netclient list` shows afterwards.
  for attempt in 1 2 3; do
    netclient join -t "$token" >/dev/null 2>&1 || true
    joined && break
    if [ "$attempt" -lt 3 ]; then sleep 10; fi
  done
  joined || fail "netclient could not join $NETWORK; check the enrollment key (uses left, expiry) and that the hub's API answers"
  changed+=("joined")
fi
has_address() { ip -4 addr show dev "$IFACE" 2>/dev/null | grep -q "inet "; }
wait_for 24 5 has_address || fail "interface $IFACE has no address 2 minutes after joining $NETWORK"
report
