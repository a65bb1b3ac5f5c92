#!/usr/bin/env bash
# `make engine`: build one upstream command from its Go module into .engine/bin, stamped with
# the version engine/<name>/go.mod requires. Usage: build.sh NAME MODULE PACKAGE VERSION_VAR
# No upstream source lives in this project: go.mod requires the module, the proxy serves it.
set -euo pipefail
name=$1 module=$2 package=$3 version_var=$4
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/engine/$name"
version=$(go list -mod=readonly -m -f '{{.Version}}' "$module")
mkdir -p "$root/.engine/bin"
echo "engine: building $package@$version (Go caches: $(go env GOMODCACHE), $(go env GOCACHE))" >&2
go build -mod=readonly -trimpath -ldflags "-X $version_var=$version" \
  -o "$root/.engine/bin/$name" "$package"
