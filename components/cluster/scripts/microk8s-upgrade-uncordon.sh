#!/usr/bin/env bash
# Rolling upgrade, step 3 of 3, on the seed control plane: wait, within a bound, until the
# node is Ready again, uncordon it if step 1 cordoned it, and record CHANNEL on it.
# Parameters: NODE_NAME, CHANNEL, WAIT_S.
set -euo pipefail
SCRIPT_NAME="upgrade-uncordon"
: "${NODE_NAME:?}" "${CHANNEL:?}" "${WAIT_S:=600}"

node() { microk8s kubectl get node "$NODE_NAME" -o jsonpath="$1" 2>/dev/null; }
ready() { [ "$(node '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
[ "$(node '{.metadata.annotations.hybrid-ai/channel}' || true)" = "$CHANNEL" ] && { report; exit 0; }
wait_for $((WAIT_S / 5)) 5 ready \
  || fail "upgrade to $CHANNEL stopped at $NODE_NAME: not Ready ${WAIT_S}s after its refresh; it stays cordoned, the nodes after it are untouched"
if [ "$(node '{.metadata.annotations.hybrid-ai/upgrade-cordoned}')" = true ]; then
  microk8s kubectl uncordon "$NODE_NAME" >/dev/null
  microk8s kubectl annotate node "$NODE_NAME" hybrid-ai/upgrade-cordoned- >/dev/null
  changed+=("uncordoned")
fi
microk8s kubectl annotate --overwrite node "$NODE_NAME" hybrid-ai/channel="$CHANNEL" >/dev/null
changed+=("channel")
report
