#!/usr/bin/env bash
# A host's mirrors, the first step on it: a preflight that every mirror answers and holds every
# artifact this host needs, then (only if all are there) apt sources, snap files and registry
# configuration pointing at them. A missing artifact fails naming it and its mirror, with nothing
# changed. Idempotent: a re-run rewrites nothing that is already right.
# Parameters (empty: that mirror is not used): APT_URL, APT_KEY (armored key), APT_COMPONENTS,
# APT_PACKAGES (what the host installs from apt; chrony is added here where base-bootstrap.sh will
# install it); DRIVER_BRANCH, KERNEL_FLAVOUR (the NVIDIA driver the GPU set-up installs, and the
# kernel flavour its signed modules were listed for, checked against this host's); NVIDIA_APT_URL, NVIDIA_APT_KEY, NVIDIA_PACKAGES
# (name=version); SNAP_URL, SNAPS (`<snap>_<rev>` ...), SNAP_SHA3_384 (`<snap>_<rev>=<hex>` ..., each file's
# pinned digest); SNAP_HOLD: true on a host outside the cluster of a site with snap files (its snaps'
# auto-refreshes held; microk8s-install.sh holds a cluster host's); SNAP_PROXY_URL, SNAP_STORE_ID;
# REGISTRIES (`<upstream>=<url>` ...), CREDENTIAL_KEYS (`<upstream>=<config key>` ..., the secret config
# key of each one's credential, named in errors), IMAGES (fully qualified references the host runs:
# `<registry>/<repository>:<tag>`, `...@sha256:<digest>` or `...:<tag>@sha256:<digest>`); SECRETS_ON_STDIN: true
# when stdin holds `ca|auth <upstream> <base64>` lines (a registry's CA, its `user:password`), and
# `files-ca files <base64>` (the files mirror's CA); FILES_URL, FILES: the model files this GPU node's
# pods fetch from the files mirror (`<name under FILES_URL>=<sha256>` ..., the digest the fetcher requires); FILES_ADDRESSES: the addresses its pods
# are given for the files mirror's host (hostAliases), which this host must resolve it to as well.
# The paths default to the system's and are parameters only so that tests can point them elsewhere.
# uses: timesync.sh
# uses: registry-hosts.sh
# uses: snap-store.sh
set -euo pipefail
SCRIPT_NAME="mirrors"
: "${HOST_NAME:?}" "${APT_URL:=}" "${APT_KEY:=}" "${APT_COMPONENTS:=main}" "${APT_PACKAGES:=}" "${DRIVER_BRANCH:=}" "${KERNEL_FLAVOUR:=}"
: "${NVIDIA_APT_URL:=}" "${NVIDIA_APT_KEY:=}" "${NVIDIA_PACKAGES:=}" "${SNAP_URL:=}" "${SNAPS:=}" "${SNAP_SHA3_384:=}" "${SNAP_HOLD:=false}"
: "${SNAP_PROXY_URL:=}" "${SNAP_STORE_ID:=}" "${REGISTRIES:=}" "${CREDENTIAL_KEYS:=}" "${IMAGES:=}" "${SECRETS_ON_STDIN:=false}"
: "${FILES_URL:=}" "${FILES:=}" "${FILES_ADDRESSES:=}"
: "${APT_DIR:=/etc/apt}" "${STAGED_CERTS_D:=/etc/hybrid-ai/certs.d}" "${STAGED_SNAPS:=/var/lib/hybrid-ai/snaps}"
: "${HOLDS:=/var/lib/hybrid-ai/snap-holds}" "${OS_RELEASE:=/etc/os-release}" "${FETCH_TIMEOUT_S:=30}"
: "${SNAP_DATA:=/var/snap/microk8s/current}" "${MICROK8S_DEFAULTS:=/snap/microk8s/current/default-args/certs.d}"
OFF=.hybrid-ai-off  # suffix of the distribution's own source files while the mirror replaces them

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
missing=()
fetch() { curl -fsS --max-time "$FETCH_TIMEOUT_S" --retry 2 "$@"; }

# Registry secrets: one file each, never an argument.
declare -A ca=() auth=()
files_ca=""
if [ "$SECRETS_ON_STDIN" = true ]; then
  while read -r kind upstream value; do
    [[ "$upstream" =~ ^[a-z0-9.:-]+$ ]] || fail "a registry secret on stdin names no registry"
    base64 -d <<<"$value" > "$work/$kind-$upstream" || fail "the $kind of $upstream on stdin is not base64"
    case $kind in
      ca) ca[$upstream]=$work/$kind-$upstream ;;
      # (The header's scheme and value as printf arguments: the line itself names no credential.)
      auth) printf '%s: %s %s\n' Authorization Basic "$value" > "$work/header-$upstream"; auth[$upstream]=$work/header-$upstream ;;
      files-ca) files_ca=$work/$kind-$upstream ;;
      *) fail "unknown registry secret kind on stdin" ;;
    esac
  done
fi

# The kernel flavour ubuntu-drivers names the signed modules after (UbuntuDrivers/kerneldetection.py,
# docs/upstream.md): the newest installed linux-image-<version>-<abi>-<flavour>, then the installed
# linux-image-* metapackage that depends on it (the greatest name when several do), its suffix,
# `virtual` read as `generic`; empty when no metapackage depends on it.
kernel_flavour() {
  local newest
  newest=$(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' 'linux-image-*' 2>/dev/null \
    | sed -n 's/^ii *linux-image-\(unsigned-\)\{0,1\}\([0-9][^ ]*-[0-9][0-9]*-[^ ]*\)$/\2/p' | sort -V | tail -n 1)
  [ -n "$newest" ] || return 0
  dpkg-query -W -f='${db:Status-Abbrev}${Package} ${Depends}\n' 'linux-image-*' 2>/dev/null \
    | awk -v a="linux-image-$newest" -v b="linux-image-unsigned-$newest" '$1 == "ii" && $2 !~ /^linux-image-(unsigned-)?[0-9]/ {
        for (i = 3; i <= NF; i++) { d = $i; sub(/,$/, "", d); if (d == a || d == b) print substr($2, 13) } }' \
    | sort | tail -n 1 | sed 's/^virtual$/generic/'
}

# --- Preflight: read only, into $work ---------------------------------------------------
# apt itself, on a sources list of the mirrors alone and state of its own: it checks the
# signatures with the given keys, finds each package and resolves the dependencies.
# shellcheck disable=SC1090
codename=$(. "$OS_RELEASE" && echo "${VERSION_CODENAME:?no VERSION_CODENAME in $OS_RELEASE}")
arch=$(dpkg --print-architecture)
apt_lines() {  # the sources lines, with the keyring folder given
  local keys=$1
  if [ -n "$APT_URL" ]; then
    for suite in "$codename" "$codename-updates" "$codename-security"; do
      echo "deb [signed-by=$keys/hybrid-ai-ubuntu-mirror.asc] $APT_URL $suite $APT_COMPONENTS"
    done
  fi
  if [ -n "$NVIDIA_APT_URL" ]; then
    echo "deb [signed-by=$keys/hybrid-ai-nvidia-mirror.asc] $NVIDIA_APT_URL/$arch /"
  fi
}
if [ -n "$APT_URL$NVIDIA_APT_URL" ]; then
  mkdir -p "$work/keys" "$work/lists/partial" "$work/cache/archives/partial"
  printf '%s\n' "$APT_KEY" > "$work/keys/hybrid-ai-ubuntu-mirror.asc"
  printf '%s\n' "$NVIDIA_APT_KEY" > "$work/keys/hybrid-ai-nvidia-mirror.asc"
  apt_lines "$work/keys" > "$work/sources.list"
  # Every other apt source would send the later steps' `apt-get update` to the internet: each one
  # fails the preflight by name (the ones the mirrors replace are set aside below).
  if [ -n "$APT_URL" ]; then
    for file in "$APT_DIR"/sources.list.d/*.list "$APT_DIR"/sources.list.d/*.sources; do
      [ -e "$file" ] || continue
      case $(basename "$file") in
        hybrid-ai-mirrors.list|ubuntu.sources) continue ;;
        nvidia-container-toolkit.list) [ -z "$NVIDIA_APT_URL" ] || continue ;;
      esac
      missing+=("no other apt source: $file (not a mirror of this site; remove it, or move it out of sources.list.d)")
    done
  fi
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists"
            -o "Dir::Cache=$work/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
  if ! apt-get "${apt_opts[@]}" -q update > "$work/update.log" 2>&1 || grep -qE '^(E|W): ' "$work/update.log"; then
    fail "apt mirror ${APT_URL:-$NVIDIA_APT_URL}${NVIDIA_APT_URL:+ / $NVIDIA_APT_URL}: its indexes for $codename did not load and verify with the given key: $(grep -E '^(E|W): ' "$work/update.log" | head -n 3 | tr '\n' ' ')"
  fi
  # A package, or `name=version` (madison: one `name | version | source` line per version known).
  has_package() {
    [[ "$1" == *=* ]] || { apt-cache "${apt_opts[@]}" show "$1" >/dev/null 2>&1; return; }
    apt-cache "${apt_opts[@]}" madison "${1%%=*}" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | grep -qxF "${1#*=}"
  }
  # chrony where base-bootstrap.sh installs it: the same test (timesync.sh).
  if [ -n "$APT_URL" ] && needs_chrony; then APT_PACKAGES+=" chrony"; fi
  # The NVIDIA driver's signed modules are linux-modules-nvidia-<branch>-<flavour>, the flavour
  # being ubuntu-drivers' own pick, checked to be the one the stack listed for this host.
  if [ -n "$DRIVER_BRANCH" ]; then
    flavour=$(kernel_flavour)
    if [ -z "$flavour" ]; then
      missing+=("the kernel's linux-image-<flavour> metapackage: none installed depends on the newest kernel, so ubuntu-drivers would find no linux-modules-nvidia-$DRIVER_BRANCH-<flavour> and build the driver with DKMS; install it (e.g. linux-image-generic)")
    elif [ "$flavour" != "$KERNEL_FLAVOUR" ]; then
      missing+=("linux-modules-nvidia-$DRIVER_BRANCH-$flavour for this host's kernel (flavour $flavour; nvidia.kernelFlavour is $KERNEL_FLAVOUR): set kernelFlavour: $flavour on $HOST_NAME and carry that package")
    fi
  fi
  for pkg in $APT_PACKAGES; do
    has_package "$pkg" || missing+=("apt package $pkg (on $APT_URL)")
  done
  for pkg in $NVIDIA_PACKAGES; do
    has_package "$pkg" || missing+=("apt package $pkg (on $NVIDIA_APT_URL)")
  done
  if [ "${#missing[@]}" -eq 0 ] && [ -n "$APT_PACKAGES$NVIDIA_PACKAGES" ]; then
    # shellcheck disable=SC2086  # package lists
    apt-get "${apt_opts[@]}" -s -q install --no-install-recommends $APT_PACKAGES $NVIDIA_PACKAGES > "$work/simulate.log" 2>&1 \
      || missing+=("the dependencies of $APT_PACKAGES $NVIDIA_PACKAGES (apt: $(grep -E '^(E: | [^ ].*: Depends)' "$work/simulate.log" | head -n 3 | tr '\n' ' '))")
  fi
fi

# Holding forever (`refresh.hold=forever`) needs snapd 2.58 (docs/upstream.md): this host's, where
# it keeps it (outside the cluster, or a node whose snapd snap is installed, so the carried one is not).
if command -v snap >/dev/null && { [ "$SNAP_HOLD" = true ] || { [ -n "$SNAPS" ] && snap list snapd >/dev/null 2>&1; }; }; then
  version=$(snap version 2>/dev/null | awk '$1 == "snapd" {print $2}')
  printf '%s\n' 2.58 "${version:-0}" | sort -C -V \
    || missing+=("snapd 2.58 or later on this host, to hold its snaps' refreshes (it runs ${version:-no snapd}; update the snapd package or snap)")
fi
# Snap files: each .snap and .assert, the assertion of the pinned revision, and the file's SHA3-384
# the one the lock pins. snapd tells a file's revision by that digest among the acked snap-revision
# assertions, all validly signed for old revisions too: the digest, not the name, makes it the
# pinned revision (docs/upstream.md).
mkdir -p "$work/snaps"
for snap in $SNAPS; do
  for ext in snap assert; do
    fetch -o "$work/snaps/$snap.$ext" "$SNAP_URL/$snap.$ext" 2>/dev/null || missing+=("snap file $snap.$ext (on $SNAP_URL)")
  done
  if [ -s "$work/snaps/$snap.assert" ] && ! grep -qx "snap-revision: ${snap##*_}" "$work/snaps/$snap.assert"; then
    missing+=("snap assertion of revision ${snap##*_} in $snap.assert (on $SNAP_URL)")
  fi
  want=$(tr ' ' '\n' <<<"$SNAP_SHA3_384" | sed -n "s/^$snap=//p")
  [ -n "$want" ] || { missing+=("the sha3-384 of $snap.snap (SNAP_SHA3_384 pins none)"); continue; }
  [ -s "$work/snaps/$snap.snap" ] || continue
  got=$(openssl dgst -sha3-384 -r "$work/snaps/$snap.snap" | cut -d' ' -f1)
  [ "$got" = "$want" ] || missing+=("snap file $snap.snap with sha3-384 $want (on $SNAP_URL: its file has sha3-384 $got)")
done
if [ -n "$SNAP_PROXY_URL" ]; then
  fetch -o "$work/store.assert" "$SNAP_PROXY_URL/v2/auth/store/assertions" 2>/dev/null \
    || missing+=("the store assertion of Snap Store Proxy $SNAP_PROXY_URL")
fi

# The fetcher pod resolves the files mirror by its hostAliases, not by this host's resolver: both
# must agree, or the preflight would check another server than the one the pod downloads from.
if [ -n "$FILES" ] && [ -n "$FILES_ADDRESSES" ]; then
  files_host=${FILES_URL#*://} files_host=${files_host%%/*} files_host=${files_host%%:*}
  resolved=$(getent ahostsv4 "$files_host" | awk '{print $1}' | sort -u | paste -sd' ' || true)
  for address in $FILES_ADDRESSES; do
    [[ " $resolved " == *" $address "* ]] || missing+=("files mirror $files_host at $address as filesAddresses gives it to the model fetcher (here it resolves to ${resolved:-nothing})")
  done
fi

# Model files: each one this node's pods fetch is there with the digest they require (trusting the files mirror's CA).
for entry in $FILES; do
  file=${entry%%=*} want=${entry#*=}
  opts=(-fsS --connect-timeout "$FETCH_TIMEOUT_S" --speed-limit 1 --speed-time "$FETCH_TIMEOUT_S")
  [ -z "$files_ca" ] || opts+=(--cacert "$files_ca")
  # Streamed through sha256sum, never stored: an archive under the right name with other bytes
  # would pass a HEAD, then be refused by the fetcher after everything is installed.
  if ! got=$(curl "${opts[@]}" "$FILES_URL/$file" 2>/dev/null | sha256sum | cut -d' ' -f1); then
    missing+=("model file $file (on $FILES_URL)")
  elif [ "$got" != "$want" ]; then
    missing+=("model file $file with sha256 $want (on $FILES_URL: its file has sha256 $got)")
  fi
done

# A credential that can push lets a node's root replace what every node pulls (MicroK8s' own images
# are pulled by tag): starting an upload to a repository the host pulls must be refused. Any 4xx is
# a refusal (401, 403, 404 from a proxy that routes no POST, 405 from a read-only registry, 400 on a
# proxy repository); 3xx, 5xx or no answer tell nothing, so it is asked once more. An upload started
# (2xx) is cancelled by its Location (distribution: registry/handlers/blobupload.go, docs/upstream.md),
# only where that is the mirror itself: the request carries the credential.
origin() {  # origin URL: scheme://host:port, the port spelled out
  local scheme=${1%%://*} authority=${1#*://}
  authority=${authority%%/*}
  [[ "$authority" == *:* ]] || authority+=:$([ "$scheme" = https ] && echo 443 || echo 80)
  echo "${scheme,,}://${authority,,}"
}
push_check() {
  local repo="" image entry key="" code="" location attempt
  for image in $IMAGES; do [ "${image%%/*}" != "$upstream" ] || { repo=${image#*/} && repo=${repo%%[:@]*} && break; }; done
  for entry in $CREDENTIAL_KEYS; do [ "${entry%%=*}" != "$upstream" ] || key=${entry#*=}; done
  for attempt in 1 2; do
    [ "$attempt" = 1 ] || sleep 1
    code=$(curl "${opts[@]}" -D "$work/upload.headers" -X POST "${api[$upstream]}/${repo:-hybrid-ai-push-check}/blobs/uploads/" || true)
    case $code in 2??|4??) break ;; esac
  done
  case $code in
    4??) return 0 ;;
    2??)
      location=$(sed -n 's/^[Ll]ocation: *//p' "$work/upload.headers" | tr -d '\r' | tail -n 1)
      [[ "$location" != /* ]] || location=${url%%://*}://${rest%%/*}$location
      if [ -z "$location" ]; then
        log "could not cancel the upload it started on $url: its answer named no Location"
      elif [[ "$location" != *://* ]] || [ "$(origin "$location")" != "$(origin "$url")" ]; then
        log "did not cancel the upload it started on $url: its Location points elsewhere ($(origin "$location")), where the credential is not sent"
      else
        curl "${opts[@]}" -X DELETE "$location" >/dev/null || log "could not cancel the upload it started on $url"
      fi
      if [ -n "$key" ]; then
        missing+=("a read-only credential for registry mirror $url ($upstream): the one in config key $key can push (an upload was accepted); give the site's nodes a pull-only user (docs/airgap.md, \"Registry credentials\") and pulumi config set --secret $key to it")
      else
        missing+=("a read-only registry mirror $url ($upstream): it accepts uploads without a credential; serve the site's nodes from a read-only instance (docs/airgap.md, \"Registry credentials\")")
      fi ;;
    *) missing+=("registry mirror $url for $upstream refusing uploads: could not tell whether the credential can push (its upload check answered ${code:-nothing} twice; a refusal is any 4xx, e.g. 401, 403, 404, 405, and an accepted upload is 2xx)") ;;
  esac
}

# Registries: the API answers (with the CA and credentials given), nothing can be pushed with what
# the host holds, and it holds each image.
declare -A api=()
for entry in $REGISTRIES; do
  upstream=${entry%%=*} url=${entry#*=}
  rest=${url#*://} path=""
  [[ "$rest" == */* ]] && path=/${rest#*/}
  api[$upstream]=${url%"$path"}/v2$path
  opts=(--max-time "$FETCH_TIMEOUT_S" -s -o /dev/null -w '%{http_code}')
  [ -z "${ca[$upstream]:-}" ] || opts+=(--cacert "${ca[$upstream]}")
  [ -z "${auth[$upstream]:-}" ] || opts+=(-H "@${auth[$upstream]}")
  # The API version check is at the registry's root, also where repositories live under a path.
  code=$(curl "${opts[@]}" "${url%"$path"}/v2/" || true)
  if [ "$code" != 200 ]; then
    missing+=("registry mirror $url for $upstream (its /v2/ answered ${code:-nothing}, not 200)")
    continue
  fi
  push_check
  for image in $IMAGES; do
    registry=${image%%/*} name=${image#*/}
    [ "$registry" = "$upstream" ] || continue
    # `repo:tag@digest` and `repo@digest` are looked up by the digest, `repo:tag` by the tag.
    if [[ "$name" == *@* ]]; then repo=${name%@*} repo=${repo%:*} ref=${name#*@}; else repo=${name%:*} ref=${name##*:}; fi
    code=$(curl "${opts[@]}" -I -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
      "${api[$upstream]}/$repo/manifests/$ref" || true)
    [ "$code" = 200 ] || missing+=("image $image (on $url: its manifest answered ${code:-nothing})")
  done
done

if [ "${#missing[@]}" -gt 0 ]; then
  for m in "${missing[@]}"; do log "missing: $m"; done
  fail "$HOST_NAME cannot install from its mirrors; nothing was changed. Missing: ${missing[0]}$([ "${#missing[@]}" -gt 1 ] && echo " and $((${#missing[@]} - 1)) more (listed above)")"
fi

# --- Apply: every artifact is there ------------------------------------------------------
put() {  # put FILE MODE: stdin into FILE when it differs
  local file=$1 mode=$2
  cat > "$work/put"
  cmp -s "$work/put" "$file" && return 1
  install -D -m "$mode" "$work/put" "$file" || fail "cannot write $file"
}
keys=$APT_DIR/keyrings
if [ -n "$APT_URL$NVIDIA_APT_URL" ]; then
  for name in ubuntu nvidia; do
    [ "$(wc -c < "$work/keys/hybrid-ai-$name-mirror.asc")" -gt 1 ] || continue
    put "$keys/hybrid-ai-$name-mirror.asc" 0644 < "$work/keys/hybrid-ai-$name-mirror.asc" && changed+=("$name-key")
  done
  apt_lines "$keys" | put "$APT_DIR/sources.list.d/hybrid-ai-mirrors.list" 0644 && changed+=("apt-sources")
  # The distribution's (and NVIDIA's) own sources would send apt to the internet: set aside.
  off=()
  [ -z "$APT_URL" ] || off+=("$APT_DIR/sources.list" "$APT_DIR/sources.list.d/ubuntu.sources")
  [ -z "$NVIDIA_APT_URL" ] || off+=("$APT_DIR/sources.list.d/nvidia-container-toolkit.list")
  for file in "${off[@]}"; do
    if [ -e "$file" ]; then mv "$file" "$file$OFF"; changed+=("set-aside-$(basename "$file")"); fi
  done
fi
# A mirror taken out of the config puts the host back: the distribution's sources it set aside
# return (unless one was written since), and its key, and the list once no apt mirror is left, go.
restore() {
  [ -e "$1$OFF" ] || return 0
  if [ -e "$1" ]; then log "$1 was written since $1$OFF was set aside: both kept"; return 0; fi
  mv "$1$OFF" "$1" && changed+=("restored-$(basename "$1")")
}
unused_key() { [ ! -e "$keys/hybrid-ai-$1-mirror.asc" ] || { rm -f "$keys/hybrid-ai-$1-mirror.asc"; changed+=("removed-$1-key"); }; }
[ -n "$APT_URL" ] || { restore "$APT_DIR/sources.list"; restore "$APT_DIR/sources.list.d/ubuntu.sources"; unused_key ubuntu; }
[ -n "$NVIDIA_APT_URL" ] || { restore "$APT_DIR/sources.list.d/nvidia-container-toolkit.list"; unused_key nvidia; }
if [ -z "$APT_URL$NVIDIA_APT_URL" ] && [ -e "$APT_DIR/sources.list.d/hybrid-ai-mirrors.list" ]; then
  rm -f "$APT_DIR/sources.list.d/hybrid-ai-mirrors.list" && changed+=("removed-apt-sources")
fi
for snap in $SNAPS; do
  for ext in snap assert; do
    put "$STAGED_SNAPS/$snap.$ext" 0644 < "$work/snaps/$snap.$ext" && changed+=("staged-$snap.$ext")
  done
done
# A host outside the cluster on a site with snap files: no snap of it refreshes against the store;
# what refresh.hold was goes into $HOLDS (format of microk8s-install.sh) for mirrors-teardown.sh.
if [ "$SNAP_HOLD" = true ] && command -v snap >/dev/null; then
  before=$(snap get system refresh.hold 2>/dev/null || true)
  if [ "$before" != forever ]; then
    grep -q '^system ' "$HOLDS" 2>/dev/null || { mkdir -p "$(dirname "$HOLDS")" && echo "system ${before:--}" >> "$HOLDS"; }
    snap refresh --hold >/dev/null || fail "snap refresh --hold failed"
    changed+=("auto-refresh-held")
  fi
  store_offline "$HOLDS"
elif [ -e "$HOLDS" ] && ! grep -qv '^\(system\|store\.access\) ' "$HOLDS" && ! snap list microk8s >/dev/null 2>&1; then
  # The site has no snap files any more: what this step held on a host outside the cluster goes
  # back (a record with snaps held by name, or MicroK8s here, is a node's: its install step's).
  restore_holds "$HOLDS"
fi
if [ -n "$SNAP_PROXY_URL" ]; then
  snap ack "$work/store.assert" || fail "snap ack of the store assertion of $SNAP_PROXY_URL failed"
  if [ "$(snap get core proxy.store 2>/dev/null || true)" != "$SNAP_STORE_ID" ]; then
    snap set core proxy.store="$SNAP_STORE_ID"
    changed+=("snap-store-proxy")
  fi
fi
# containerd's hosts.toml per upstream: the mirror as the one [host] entry and as `server` (tried
# last, the same endpoint), so the upstream is never tried. containerd 1.6/1.7 rejects a file with no [host] table
# and then falls back to the upstream (docs/upstream.md). Staged here, then put into MicroK8s' certs.d
# below when MicroK8s is installed (else by microk8s-install.sh right after it installs the snap).
for entry in $REGISTRIES; do
  upstream=${entry%%=*} url=${entry#*=} dir=$STAGED_CERTS_D/${entry%%=*}
  rest=${url#*://} path=""
  [[ "$rest" == */* ]] && path=/${rest#*/}
  host=${api[$upstream]%/v2}
  fields() {  # capabilities, CA and credentials header of one entry; $1: its header table's name
    echo 'capabilities = ["pull", "resolve"]'
    [ -z "${ca[$upstream]:-}" ] || echo 'ca = "ca.crt"'
    [ -z "${auth[$upstream]:-}" ] || printf '[%s]\n  authorization = "%s"\n' "$1" "$(cut -d' ' -f2- < "${auth[$upstream]}" | tr -d '\n')"
  }
  {
    echo "# hybrid-ai: images of $upstream come from its mirror only"
    # `server` is the same prefixed endpoint: were it the registry's root, an image missing under
    # the prefix would be taken from the root's namespace (another upstream's).
    echo "server = \"$host\""
    [ -z "$path" ] || echo "override_path = true"
    fields header
    echo
    echo "[host.\"$host\"]"
    [ -z "$path" ] || echo "override_path = true"
    fields "host.\"$host\".header"
  } > "$work/hosts.toml"
  put "$dir/hosts.toml" 0600 < "$work/hosts.toml" && changed+=("registry-$upstream")
  if [ -n "${ca[$upstream]:-}" ]; then put "$dir/ca.crt" 0644 < "${ca[$upstream]}" && changed+=("registry-ca-$upstream"); fi
done
# A registry no longer mirrored: its staged configuration goes, and with it containerd's copy below.
for dir in "$STAGED_CERTS_D"/*/; do
  [ -d "$dir" ] || continue
  upstream=$(basename "$dir")
  [[ " $REGISTRIES " == *" $upstream="* ]] && continue
  rm -rf "$dir" && changed+=("removed-registry-$upstream")
done
# This step re-runs whenever a registry's URL, CA or credential changes (they are its inputs), so
# containerd gets the change here: the MicroK8s step's inputs name no registry.
sync_registry_hosts
report
