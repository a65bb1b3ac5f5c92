#!/usr/bin/env bash
# Upstream's `make generate-crds` (Makefile at v0.93.1): controller-gen crd:crdVersions=v1 over
# pkg/apis/monitoring/v1 (and v1alpha1, whose CRDs the program does not use).
# Usage: generate.sh OUT_DIR: writes the CRDs the program's resources need;
#        generate.sh --reference: where upstream publishes them (check.py compares).
set -euo pipefail
out=$1
api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
if [ "$out" = --reference ]; then
  # The release's example/prometheus-operator-crd, in the module of the same version.
  version=$(go list -mod=readonly -m -f '{{.Version}}' "$api")
  dir=$(cd / && go mod download -json "github.com/prometheus-operator/prometheus-operator@$version" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  echo "$dir/example/prometheus-operator-crd {group}_{plural}.yaml"
  exit
fi
mkdir -p "$out"
go run -mod=readonly -buildvcs=false sigs.k8s.io/controller-tools/cmd/controller-gen crd:crdVersions=v1 \
  paths="$api/v1" output:crd:dir="$out/all"
# The program creates PrometheusRules only.
mv "$out/all/monitoring.coreos.com_prometheusrules.yaml" "$out/"
rm -r "$out/all"
