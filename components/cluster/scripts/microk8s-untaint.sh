#!/usr/bin/env bash
# On the control plane: remove the taints microk8s-taint.sh gave the node (and no other), when
# the node's taint set changes or the node goes. A node or taint already gone is not an error.
# Parameters: NODE_NAME, TAINTS (space-separated key=value:Effect, as given to microk8s-taint.sh).
set -euo pipefail
SCRIPT_NAME="untaint"
: "${NODE_NAME:?}" "${TAINTS:=}"
microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1 || { report; exit 0; }
have=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect}{"\n"}{end}')
for taint in $TAINTS; do
  grep -qxF -- "$taint" <<<"$have" || continue
  spec="${taint%%=*}:${taint##*:}-"
  microk8s kubectl taint node "$NODE_NAME" "$spec" >/dev/null || fail "could not remove taint $spec from node $NODE_NAME"
  changed+=("$spec")
done
report
