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
if ! netclient list 2>/dev/null | grep -qw -- "$NETWORK"; then
  # The token is an argument of netclient only (it has no other way to take it).
  retry netclient join -t "$token" >/dev/null 2>&1 || fail "netclient could not join $NETWORK; check the enrollment key (uses left, expiry)"
  changed+=("joined")
fi
has_address() { ip -4 addr show dev "$IFACE" 2>/dev/null | grep -q "inet "; }
wait_for 24 5 has_address || fail "interface $IFACE has no address 2 minutes after joining $NETWORK"
report
