#!/usr/bin/env bash
# Rolling MicroK8s upgrade, step 2 of 3, on the node (drained by step 1, microk8s-upgrade-drain.sh): refresh MicroK8s to CHANNEL
# unless it already tracks it. On a control plane `microk8s status --wait-ready` then waits for
# the API; on a worker (clustered.lock) the status wrapper returns at once, so the wait that
# counts is step 3's (microk8s-upgrade-uncordon.sh), on the Node object. Prints `refreshed_at=<epoch>` (this host's clock, the
# clock its kubelet stamps heartbeats with; 0 when nothing was refreshed) for step 3.
# Parameters: HOST_NAME, CHANNEL, WAIT_S.
set -euo pipefail
SCRIPT_NAME="upgrade-refresh"
: "${CHANNEL:?}" "${WAIT_S:=600}"
tracking=$(snap list microk8s | awk 'NR == 2 {print $4}') || fail "MicroK8s is not installed on this host"
since=0
if [ "$tracking" != "$CHANNEL" ]; then
  log "refreshing MicroK8s from $tracking to $CHANNEL"
  since=$(date -u +%s)
  retry snap refresh microk8s --channel="$CHANNEL" >&2 \
    || fail "MicroK8s upgrade to $CHANNEL stopped at $(hostname): snap refresh failed; the node stays drained, the nodes after it are untouched"
  changed+=("refreshed")
fi
microk8s status --wait-ready --timeout "$WAIT_S" >/dev/null \
  || fail "MicroK8s upgrade to $CHANNEL stopped at $(hostname): MicroK8s not ready ${WAIT_S}s after the refresh"
echo "refreshed_at=$since"
report
