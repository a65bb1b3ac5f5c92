#!/usr/bin/env bash
# A roll's last step for one node, on the seed control plane (both rolls): wait, within a bound,
# until the node is back, uncordon it if the drain step cordoned it, and record TARGET on it
# (the annotation hybrid-ai/MARK). "Back" is what only the node's restarted kubelet can show:
# Ready, Ready's lastHeartbeatTime (stamped by the node's kubelet with the node's clock, like
# SINCE) not older than SINCE, and, for a MicroK8s upgrade, the Node's kubeletVersion on
# KUBELET_MINOR. Ready alone stays True from before the restart until the node-lifecycle
# controller's grace period ends.
# Parameters: NODE_NAME, MARK, TARGET, ROLL (in words, for messages), WAIT_S, SINCE (epoch
# seconds on the node's clock from the step before: its refresh or its reboot; 0 = none),
# KUBELET_MINOR (e.g. 1.33; empty: any version).
set -euo pipefail
SCRIPT_NAME="upgrade-uncordon"
: "${NODE_NAME:?}" "${MARK:?}" "${TARGET:?}" "${ROLL:?}" "${WAIT_S:=600}" "${SINCE:=0}" "${KUBELET_MINOR:=}"
[[ -z $KUBELET_MINOR || $KUBELET_MINOR =~ ^[0-9]+\.[0-9]+$ ]] || fail "KUBELET_MINOR $KUBELET_MINOR is no Kubernetes minor version"
[[ $SINCE =~ ^[0-9]+$ ]] || fail "SINCE must be epoch seconds"

node() { microk8s kubectl get node "$NODE_NAME" -o jsonpath="$1" 2>/dev/null; }
back() {
  [ "$(node '{.status.conditions[?(@.type=="Ready")].status}')" = True ] || return 1
  [[ -z $KUBELET_MINOR || $(node '{.status.nodeInfo.kubeletVersion}') == "v$KUBELET_MINOR".* ]] || return 1
  local beat
  beat=$(node '{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')
  [ -n "$beat" ] && [ "$(date -u -d "$beat" +%s)" -ge "$SINCE" ]
}
[ "$(node "{.metadata.annotations.hybrid-ai/$MARK}" || true)" = "$TARGET" ] && { report; exit 0; }
wait_for $((WAIT_S / 5)) 5 back \
  || fail "$ROLL stopped at $NODE_NAME: not Ready${KUBELET_MINOR:+ on v$KUBELET_MINOR} ${WAIT_S}s after it came back; it stays cordoned, the nodes after it are untouched"
if [ "$(node '{.metadata.annotations.hybrid-ai/upgrade-cordoned}')" = true ]; then
  microk8s kubectl uncordon "$NODE_NAME" >/dev/null
  microk8s kubectl annotate node "$NODE_NAME" hybrid-ai/upgrade-cordoned- >/dev/null
  changed+=("uncordoned")
fi
microk8s kubectl annotate --overwrite node "$NODE_NAME" "hybrid-ai/$MARK=$TARGET" >/dev/null
changed+=("$MARK")
report
