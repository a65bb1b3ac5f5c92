#!/usr/bin/env bash
# Rolling upgrade, step 3 of 3, on the seed control plane: wait, within a bound, until the
# node is back on the new version, uncordon it if step 1 cordoned it, and record CHANNEL on it.
# "Back" is what only the refreshed kubelet can show: the Node's kubeletVersion on CHANNEL's
# minor, Ready, and Ready's lastHeartbeatTime (stamped by the node's kubelet with the node's
# clock, like REFRESHED_AT) not older than the refresh. Ready alone stays True from before the
# refresh until the node-lifecycle controller's grace period ends.
# Parameters: NODE_NAME, CHANNEL, WAIT_S, REFRESHED_AT (step 2's refreshed_at, 0 = not refreshed).
set -euo pipefail
SCRIPT_NAME="upgrade-uncordon"
: "${NODE_NAME:?}" "${CHANNEL:?}" "${WAIT_S:=600}" "${REFRESHED_AT:=0}"
minor=${CHANNEL%%/*}; minor=${minor%%-*}
[[ $minor =~ ^[0-9]+\.[0-9]+$ ]] || fail "CHANNEL $CHANNEL names no Kubernetes minor version"
[[ $REFRESHED_AT =~ ^[0-9]+$ ]] || fail "REFRESHED_AT must be epoch seconds"

node() { microk8s kubectl get node "$NODE_NAME" -o jsonpath="$1" 2>/dev/null; }
back() {
  [ "$(node '{.status.conditions[?(@.type=="Ready")].status}')" = True ] || return 1
  [[ $(node '{.status.nodeInfo.kubeletVersion}') == "v$minor".* ]] || return 1
  local beat
  beat=$(node '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')
  [ -n "$beat" ] && [ "$(date -u -d "$beat" +%s)" -ge "$REFRESHED_AT" ]
}
[ "$(node '{.metadata.annotations.hybrid-ai/channel}' || true)" = "$CHANNEL" ] && { report; exit 0; }
wait_for $((WAIT_S / 5)) 5 back \
  || fail "upgrade to $CHANNEL stopped at $NODE_NAME: not Ready on v$minor ${WAIT_S}s after its refresh; it stays cordoned, the nodes after it are untouched"
if [ "$(node '{.metadata.annotations.hybrid-ai/upgrade-cordoned}')" = true ]; then
  microk8s kubectl uncordon "$NODE_NAME" >/dev/null
  microk8s kubectl annotate node "$NODE_NAME" hybrid-ai/upgrade-cordoned- >/dev/null
  changed+=("uncordoned")
fi
microk8s kubectl annotate --overwrite node "$NODE_NAME" hybrid-ai/channel="$CHANNEL" >/dev/null
changed+=("channel")
report
