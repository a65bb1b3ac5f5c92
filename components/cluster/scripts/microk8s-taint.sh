#!/usr/bin/env bash
# On the control plane, once the node is Ready: give it the taints the program owns, each by
# `kubectl taint` (an update of those entries, never an apply of the whole list): spec.taints is
# an atomic list under server-side apply (k8s.io/api core/v1 NodeSpec.Taints `+listType=atomic`),
# so applying it would claim every taint on the node, the node lifecycle controller's
# (not-ready, unreachable, unschedulable) included. Taints already there are left as they are.
# Idempotent. On destroy (and before a changed set is given), microk8s-untaint.sh removes them.
# Parameters: NODE_NAME, TAINTS (space-separated key=value:Effect, from validated config).
set -euo pipefail
SCRIPT_NAME="taint"
: "${NODE_NAME:?}" "${TAINTS:=}"
have=$(retry microk8s kubectl get node "$NODE_NAME" -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect}{"\n"}{end}') \
  || fail "cannot read the taints of node $NODE_NAME; is the API up?"
for taint in $TAINTS; do
  grep -qxF -- "$taint" <<<"$have" && continue
  # kubectl's spelling of an empty value is key:Effect.
  spec=${taint/=:/:}
  retry microk8s kubectl taint node "$NODE_NAME" "$spec" --overwrite >/dev/null || fail "could not taint node $NODE_NAME with $spec"
  changed+=("$spec")
done
report
