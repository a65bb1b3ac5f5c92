#!/usr/bin/env bash
# `make command-standin`: build the lab's pulumi-command stand-in into .engine/standin.
# Tests only: never installed for users; a test puts that folder on the CLI's PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  # As engine/build.sh: on a laptop without Go the engine tests skip; CI installs Go (.ci/run).
  echo "command-standin: Go is not installed; not building the stand-in (make e2e-engine will skip)" >&2
  case "${CI:-}" in 1 | true | yes) exit 1 ;; *) exit 0 ;; esac
fi
cd "$root/tools/lab/command-standin"
mkdir -p "$root/.engine/standin"
echo "command-standin: building (Go caches: $(go env GOMODCACHE), $(go env GOCACHE))" >&2
go build -mod=readonly -buildvcs=false -trimpath -o "$root/.engine/standin/pulumi-resource-command.tmp" .
mv "$root/.engine/standin/pulumi-resource-command.tmp" "$root/.engine/standin/pulumi-resource-command"
