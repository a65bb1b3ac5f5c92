#!/usr/bin/env bash
# On the seed: the ConfigMap whose keys are the stack's cluster hosts (components/cluster/
# known_nodes.py: an admission policy refuses a Node created by any other node identity).
# Written whole (created, else replaced): the keys are exactly the hosts given. Idempotent.
# Parameters: NODE_NAMES (space-separated), CONFIGMAP, NAMESPACE.
set -euo pipefail
SCRIPT_NAME="known-nodes"
: "${NODE_NAMES:?}" "${CONFIGMAP:?}" "${NAMESPACE:?}"
data=""
set -f  # the names are split on spaces, never globbed
for n in $NODE_NAMES; do
  [[ $n =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || fail "not a node name: '$(shown "$n")'"
  data+="${data:+,}\"$n\":\"cluster host\""
done
set +f
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","namespace":"%s"},"data":{%s}}\n' "$CONFIGMAP" "$NAMESPACE" "$data" > "$manifest"
write() {
  if microk8s kubectl -n "$NAMESPACE" get configmap "$CONFIGMAP" >/dev/null 2>&1; then
    microk8s kubectl replace -f "$manifest"
  else
    microk8s kubectl create -f "$manifest"
  fi
}
retry write >/dev/null || fail "could not write the ConfigMap $NAMESPACE/$CONFIGMAP of the stack's cluster hosts"
echo "known=$NODE_NAMES"
