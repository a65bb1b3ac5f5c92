#!/usr/bin/env bash
# `make engine`: build one upstream command from its Go module into .engine/bin, stamped with
# the version engine/<name>/go.mod requires. Usage: build.sh NAME MODULE PACKAGE VERSION_VAR
# No upstream source lives in this project: go.mod requires the module, the proxy serves it.
set -euo pipefail
name=$1 module=$2 package=$3 version_var=$4
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  # On a laptop without Go the engine tests skip with this reason; CI installs Go (.ci/run).
  echo "engine: Go is not installed; not building $name (make e2e-engine will skip)" >&2
  case "${CI:-}" in 1 | true | yes) exit 1 ;; *) exit 0 ;; esac
fi
cd "$root/engine/$name"
version=$(go list -mod=readonly -m -f '{{.Version}}' "$module")
mkdir -p "$root/.engine/bin"
echo "engine: building $package@$version (Go caches: $(go env GOMODCACHE), $(go env GOCACHE))" >&2
go build -mod=readonly -buildvcs=false -trimpath -ldflags "-X $version_var=$version" \
  -o "$root/.engine/bin/$name.tmp" "$package"
mv "$root/.engine/bin/$name.tmp" "$root/.engine/bin/$name"  # never a half-written binary
