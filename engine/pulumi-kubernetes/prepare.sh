#!/usr/bin/env bash
# The provider's main package embeds schema-embed.json and terraform-mapping-embed.json, which
# upstream's `go generate` makes from schema.json and terraform-mapping.json and which its
# module zip therefore lacks. Run upstream's own generate.go (from the module cache) into GEN_DIR,
# then build upstream's main.go with them as the package ./cmd/pulumi-resource-kubernetes of this
# module, which exists only in a `go build -overlay` (Go refuses overlays inside the module
# cache): nothing is written into the project. Usage: prepare.sh GEN_DIR (PROVIDER_VERSION set).
set -euo pipefail
gen=$1
: "${PROVIDER_VERSION:?PROVIDER_VERSION is the provider version stamped into its schema}"
module=github.com/pulumi/pulumi-kubernetes/provider/v4
pkg="$(go list -mod=readonly -m -f '{{.Dir}}' "$module")/cmd/pulumi-resource-kubernetes"
mkdir -p "$gen/work"
go build -mod=readonly -buildvcs=false -trimpath -o "$gen/generate" "$pkg/generate.go"
ln -s "$pkg/schema.json" "$pkg/terraform-mapping.json" "$gen/work/"
(cd "$gen/work" && VERSION=$PROVIDER_VERSION "$gen/generate")
here="$PWD/cmd/pulumi-resource-kubernetes"
cat >"$gen/overlay.json" <<JSON
{"Replace": {
  "$here/main.go": "$pkg/main.go",
  "$here/schema-embed.json": "$gen/work/schema-embed.json",
  "$here/terraform-mapping-embed.json": "$gen/work/terraform-mapping-embed.json"
}}
JSON
