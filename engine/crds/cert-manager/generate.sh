#!/usr/bin/env bash
# cert-manager's types carry no kubebuilder resource markers: upstream keeps each CRD's envelope
# (names, scope, versions, printer columns) in deploy/crds/crd-*.yaml and has controller-gen
# write the schemas into it from the Go types (`make generate-crds`, make/ci.mk at v1.16.2:
# controller-gen schemapatch:manifests=./deploy/crds output:dir=./deploy/crds paths=./pkg/apis/...).
# Same here, on scratch copies of those envelopes read from the module cache and over the
# package of the cert-manager.io group (the one the program uses): the schemas are regenerated,
# nothing is copied into the project. check.py then drops the Helm-templated labels.
# Usage: generate.sh OUT_DIR: writes the CRDs the program's resources need;
#        generate.sh --reference: where upstream publishes them (check.py compares).
set -euo pipefail
out=$1
module=github.com/cert-manager/cert-manager
src="$(go list -mod=readonly -m -f '{{.Dir}}' "$module")/deploy/crds"
if [ "$out" = --reference ]; then
  echo "$src crd-{plural}.yaml"
  exit
fi
mkdir -p "$out/envelopes"
# The program creates Certificates and a ClusterIssuer only.
for plural in certificates clusterissuers; do
  install -m 0644 "$src/crd-$plural.yaml" "$out/envelopes/"
done
go run -mod=readonly -buildvcs=false sigs.k8s.io/controller-tools/cmd/controller-gen \
  schemapatch:manifests="$out/envelopes" output:dir="$out" paths="$module/pkg/apis/certmanager/v1"
rm -r "$out/envelopes"
