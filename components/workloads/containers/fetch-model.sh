#!/bin/sh
# Init container of TF-Serving (curl image: alpine, busybox sh): put one model version's
# SavedModel at TARGET on the models volume, from SOURCE (a .tar.gz of saved_model.pb and
# variables/), refused unless its SHA-256 is SHA256. Idempotent: a version already in place
# (its .sha256 marker matches) is left alone, so a restarted pod downloads nothing.
# Parameters (environment): SOURCE, SHA256, TARGET; CACERT: the CA file to trust for SOURCE (a
# files mirror's private CA) instead of the image's bundle.
set -eu
: "${SOURCE:?}" "${SHA256:?}" "${TARGET:?}" "${CACERT:=}"
if [ -f "$TARGET/.sha256" ] && [ "$(cat "$TARGET/.sha256")" = "$SHA256" ]; then
  echo "fetch-model: $TARGET is in place"
  exit 0
fi
parent=$(dirname "$TARGET")
mkdir -p "$parent"
# Work inside the volume, so the final move is a rename and a half-written version never shows.
work=$(mktemp -d "$parent/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
set --
[ -z "$CACERT" ] || set -- --cacert "$CACERT"
curl "$@" -fsSL --retry 5 --retry-all-errors --connect-timeout 20 -o "$work/model.tar.gz" "$SOURCE" \
  || { echo "fetch-model: could not download $SOURCE" >&2; exit 1; }
actual=$(sha256sum "$work/model.tar.gz" | cut -d ' ' -f 1)
if [ "$actual" != "$SHA256" ]; then
  echo "fetch-model: $SOURCE has SHA-256 $actual, the config says $SHA256; refusing it" >&2
  exit 1
fi
mkdir "$work/version"
tar -xzf "$work/model.tar.gz" -C "$work/version"
[ -f "$work/version/saved_model.pb" ] \
  || { echo "fetch-model: $SOURCE has no saved_model.pb at its top level" >&2; exit 1; }
printf '%s' "$SHA256" > "$work/version/.sha256"
rm -rf "$TARGET"  # a stale version of the same number
mv "$work/version" "$TARGET"
echo "fetch-model: $TARGET fetched"
