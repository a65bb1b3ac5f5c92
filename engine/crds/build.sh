#!/usr/bin/env bash
# `make crds`: generate one group's CRDs (engine/crds/GROUP/generate.sh, in that Go module) and
# compare them with the ones upstream publishes for the same version (check.py) before they
# replace .engine/crds/GROUP. Usage: build.sh GROUP (PY: a Python with PyYAML).
set -euo pipefail
group=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "engine: Go is not installed; not generating the $group CRDs" >&2
  case "${CI:-}" in 1 | true | yes) exit 1 ;; *) exit 0 ;; esac
fi
out="$root/.engine/crds/$group"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cd "$root/engine/crds/$group"
echo "engine: generating the $group CRDs" >&2
bash generate.sh "$out.tmp/generated"
read -r reference pattern < <(bash generate.sh --reference)
"${PY:-python3}" "$root/engine/crds/check.py" "$out.tmp/generated" "$reference" "$pattern" "$out.tmp"
rm -r "$out.tmp/generated"
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/.generated"
