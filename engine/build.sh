#!/usr/bin/env bash
# `make engine`: build upstream commands from the Go module pinned in engine/DIR/go.mod into
# .engine/bin. No upstream source lives in this project: go.mod requires the module, the proxy
# serves it, and Go's module and build caches stay machine-wide (a warm machine only relinks).
#
# Usage: [OUT=FOLDER] build.sh DIR MODULE PACKAGE... [-- VAR=VALUE...]
#   DIR is a folder of engine/, or a project path written ./PATH for a module of the project's
#   own (the lab's command stand-in: `make command-standin`, OUT=.engine/standin);
#   each PACKAGE (a main package) becomes OUT/<last element of its path> (OUT: .engine/bin), or
#   OUT/NAME if written PACKAGE=NAME;
#   each VAR=VALUE becomes -ldflags "-X VAR=VALUE", where VALUE may use @VERSION@ (MODULE's
#   version in go.mod, e.g. v1.32.13), @SEMVER@ (the same without its v), @MAJOR@, @MINOR@ and
#   @DATE@ (the time of MODULE's commit, so the stamp is reproducible).
# An optional engine/DIR/prepare.sh GEN_DIR runs first: it makes inputs a module zip lacks in
# GEN_DIR (under .engine/gen, never in the project) and may write GEN_DIR/overlay.json, which
# the build then uses (`go build -overlay`) to place them into the module's package.
set -euo pipefail
dir=$1 module=$2
shift 2
packages=() stamps=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do packages+=("$1"); shift; done
[ $# -gt 0 ] && shift
stamps=("$@")
root=$(cd "$(dirname "$0")/.." && pwd)
case $dir in
  ./*) src="$root/${dir#./}" ;;
  *) src="$root/engine/$dir" ;;
esac
tag=$(basename "$dir")
export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  # On a laptop without Go the engine tests skip with this reason; CI installs Go (.ci/run).
  echo "engine: Go is not installed; not building ${packages[*]} (the engine tests will skip)" >&2
  case "${CI:-}" in 1 | true | yes) exit 1 ;; *) exit 0 ;; esac
fi
cd "$src"
version=$(go list -mod=readonly -m -f '{{.Version}}' "$module")
date=$(go list -mod=readonly -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$module")
major=$(echo "$version" | sed -n 's/^v\([0-9]*\)\..*/\1/p')
minor=$(echo "$version" | sed -n 's/^v[0-9]*\.\([0-9]*\)\..*/\1/p')
ldflags="-s -w"
for stamp in "${stamps[@]}"; do
  stamp=${stamp//@VERSION@/$version}
  stamp=${stamp//@SEMVER@/${version#v}}
  stamp=${stamp//@MAJOR@/$major}
  stamp=${stamp//@MINOR@/$minor}
  stamp=${stamp//@DATE@/$date}
  ldflags+=" -X $stamp"
done
gen="$root/.engine/gen/$tag"
overlay=()
if [ -f prepare.sh ]; then
  rm -rf "$gen"
  mkdir -p "$gen"
  bash prepare.sh "$gen"
  [ ! -f "$gen/overlay.json" ] || overlay=(-overlay "$gen/overlay.json")
fi
out="$root/${OUT:-.engine/bin}"
tmp="$out/.tmp-$tag"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "engine: building from $module${version:+@$version} (Go caches: $(go env GOMODCACHE), $(go env GOCACHE))" >&2
for package in "${packages[@]}"; do
  name=${package##*=}
  package=${package%=*}
  [ "$name" != "$package" ] || name=${package##*/}
  echo "engine: $name <- $package" >&2
  go build -mod=readonly -buildvcs=false -trimpath "${overlay[@]}" -ldflags "$ldflags" -o "$tmp/$name" "$package"
done
for package in "${packages[@]}"; do
  name=${package##*=}
  [ "$name" != "$package" ] || name=${package##*/}
  mv "$tmp/$name" "$out/$name"  # never a half-written binary, nor half a set
done
rmdir "$tmp"
