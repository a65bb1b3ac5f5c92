#!/usr/bin/env bash
# On the seed: the ConfigMap whose keys are the stack's cluster hosts (components/cluster/
# known_nodes.py: an admission policy refuses a Node created by any other node identity).
# Server-side apply as its one field manager: a host no longer listed loses its key. Idempotent.
# Parameters: NODE_NAMES (space-separated), CONFIGMAP, NAMESPACE.
set -euo pipefail
SCRIPT_NAME="known-nodes"
: "${NODE_NAMES:?}" "${CONFIGMAP:?}" "${NAMESPACE:?}"
data=""
for n in $NODE_NAMES; do
  [[ $n =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || fail "not a node name: '$(shown "$n")'"
  data+="${data:+,}\"$n\":\"cluster host\""
done
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","namespace":"%s"},"data":{%s}}\n' "$CONFIGMAP" "$NAMESPACE" "$data" > "$manifest"
retry microk8s kubectl apply --server-side --force-conflicts --field-manager=hybrid-ai-known-nodes -f "$manifest" >/dev/null \
  || fail "could not write the ConfigMap $NAMESPACE/$CONFIGMAP of the stack's cluster hosts"
echo "known=$NODE_NAMES"
