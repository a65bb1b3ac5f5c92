#!/usr/bin/env bash
# Rolling upgrade, step 1 of 3, on the seed control plane: drain the node unless it already
# runs CHANNEL (the annotation hybrid-ai/channel, which step 3 sets once the node is back).
# `kubectl drain` cordons the node, then evicts its pods through the Eviction API, which
# refuses an eviction a PodDisruptionBudget forbids (drain retries it until --timeout). A
# node that was already cordoned (by an operator) is not uncordoned by step 3.
# A failure stops the roll here: the nodes after this one are untouched.
# Parameters: NODE_NAME, CHANNEL, DRAIN_TIMEOUT_S.
set -euo pipefail
SCRIPT_NAME="upgrade-drain"
: "${NODE_NAME:?}" "${CHANNEL:?}" "${DRAIN_TIMEOUT_S:=600}"

node() { microk8s kubectl get node "$NODE_NAME" -o jsonpath="$1"; }
at=$(retry node '{.metadata.annotations.hybrid-ai/channel}') || fail "cannot read node $NODE_NAME; is the API up?"
if [ "$at" != "$CHANNEL" ]; then
  if [ "$(node '{.spec.unschedulable}')" != true ]; then
    microk8s kubectl annotate --overwrite node "$NODE_NAME" hybrid-ai/upgrade-cordoned=true >/dev/null
    changed+=("cordoned")
  fi
  microk8s kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT_S}s" >&2 \
    || fail "upgrade to $CHANNEL stopped at $NODE_NAME: drain did not finish within ${DRAIN_TIMEOUT_S}s (a PodDisruptionBudget?); the nodes after it are untouched; fix it and re-run, or \`microk8s kubectl uncordon $NODE_NAME\`"
  changed+=("drained")
fi
report
