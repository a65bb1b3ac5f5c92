#!/usr/bin/env bash
# Gateway API's standard channel (main.go), as in its release's standard-install.yaml, less the
# ValidatingAdmissionPolicy that file also holds (hand-written upstream, not generated; it only
# refuses older bundle versions).
# Usage: generate.sh OUT_DIR: writes the standard channel's CRDs;
#        generate.sh --reference: where upstream publishes them (check.py compares).
set -euo pipefail
out=$1
if [ "$out" = --reference ]; then
  echo "$(go list -mod=readonly -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/standard {group}_{plural}.yaml"
  exit
fi
mkdir -p "$out"
go run -mod=readonly -buildvcs=false . -out "$out"
