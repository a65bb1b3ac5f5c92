#!/usr/bin/env bash
# `pulumi destroy` on the seed: the ConfigMap of the stack's cluster hosts goes (its policy went
# first). Idempotent; nothing to do where MicroK8s is gone already.
# Parameters: CONFIGMAP, NAMESPACE.
set -euo pipefail
SCRIPT_NAME="known-nodes"
: "${CONFIGMAP:?}" "${NAMESPACE:?}"
command -v microk8s >/dev/null 2>&1 || exit 0
retry microk8s kubectl -n "$NAMESPACE" delete configmap "$CONFIGMAP" --ignore-not-found >/dev/null \
  || fail "could not delete the ConfigMap $NAMESPACE/$CONFIGMAP; run destroy again"
