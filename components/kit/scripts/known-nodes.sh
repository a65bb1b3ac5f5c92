#!/usr/bin/env bash
# The stack's known-nodes list: the ConfigMap CONFIGMAP in NAMESPACE whose keys are the stack's
# cluster hosts (components/cluster/known_nodes.py), read on the control plane.
# Composed after lib.sh into a script that has the line `# uses: known-nodes.sh`:
# microk8s-drain.sh and microk8s-remove-node.sh (a worker's Node goes only once it is not listed).

# Whether node $1 is one of the list's keys. A missing list names nobody; an API server that
# does not answer fails the step: a removal must not pass for a replacement, nor the reverse.
still_listed() {
  local keys
  : "${CONFIGMAP:?}" "${NAMESPACE:?}"
  # shellcheck disable=SC2016 # a Go template for kubectl, not shell
  if ! keys=$(microk8s kubectl -n "$NAMESPACE" get configmap "$CONFIGMAP" --ignore-not-found \
      -o go-template='{{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}' 2>&1); then
    fail "could not read the known-nodes list ($NAMESPACE/$CONFIGMAP): $(shown "$keys")"
  fi
  grep -qxF -- "$1" <<< "$keys"
}
