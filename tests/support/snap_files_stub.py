"""The snap stand-in's part for mirrored sites (prepended to `cluster_stubs`' snap stub): `snap ack`,
installing a local file, `snap list` of snapd and a base, refresh holds, `snap get/set system
refresh.hold`, `snap remove`. As snapd (docs/upstream.md, canonical/snapd):

- a local file (without --dangerous) installs as the revision of the acked `snap-revision`
  assertion whose `snap-sha3-384` is the file's digest (base64url, unpadded), whatever the file is
  named; with none acked, "cannot find signatures with metadata for snap"; it tracks no channel;
- installing an application snap (MicroK8s) where the snapd snap or its base is missing fetches
  that from the store first (installPrereqs): here, with no internet, that fails as it would;
- `snap refresh --hold` with no snap holds auto-refreshes of all snaps (refresh.hold=forever),
  with names holds each; `snap list` notes a held snap as `held`; `--unhold` undoes either;
- `snap version` prints `snapd <version>` ($STATE/snapd-version, else 2.66.1+22.04: Ubuntu 22.04's);
- `snap set system store.access=offline` (overlord/configstate/configcore/store.go, added in 2.61:
  an older snapd refuses it, `cannot set "core.store.access": unsupported system option`, as
  configcore/runwithstate.go does any unknown option; another value than `offline` is refused),
  `snap get` (unset: "has no ... configuration option", an error) and `snap unset` of it."""

SNAP_FILES_STUB = '''
no_store() {  # what snapd prints when a prerequisite must come from a store it cannot reach
  echo "error: cannot perform the following tasks:" >&2
  echo "- Ensure prerequisites for \\"$1\\" are available (cannot install $2 \\"$3\\": Post \\"https://api.snapcraft.io/v2/snaps/refresh\\": dial tcp: lookup api.snapcraft.io: no such host)" >&2
  exit 1
}
local_file() {
  local file=${!#} digest rev name
  name=$(basename "$file" .snap) && name=${name%_*}
  digest=$("$PYTHON" -c 'import base64, hashlib, sys; print(base64.urlsafe_b64encode(hashlib.sha3_384(open(sys.argv[1], "rb").read()).digest()).rstrip(b"=").decode())' "$file")
  rev=$(cat "$STATE"/acked/*.assert 2>/dev/null | awk -v d="$digest" 'BEGIN {RS = ""} {
    s = ""; r = ""; n = split($0, l, "\\n")
    for (i = 1; i <= n; i++) { if (l[i] ~ /^snap-sha3-384: /) s = substr(l[i], 16); if (l[i] ~ /^snap-revision: /) r = substr(l[i], 16) }
    if (s == d) { print r; exit }
  }')
  [ -n "$rev" ] || { echo "error: cannot find signatures with metadata for snap \\"$file\\"" >&2; exit 1; }
  case $name in
    microk8s)
      [ -e "$STATE/snap-snapd" ] || no_store microk8s "system snap" snapd
      [ -e "$STATE/snap-core20" ] || no_store microk8s "snap base" core20
      echo - > "$STATE/snap-channel"; echo "$rev" > "$STATE/snap-rev";;
    *) echo "$rev" > "$STATE/snap-$name"; exit 0;;
  esac
}
held_note() { [ ! -e "$STATE/held-$1" ] || echo ,held; }
case $1 in
  ack) [ -s "$2" ] || { echo "error: cannot read assertion file" >&2; exit 1; }
       mkdir -p "$STATE/acked"; cp "$2" "$STATE/acked/$(basename "$2")"; exit 0;;
  list) if [ -n "${2:-}" ] && [ "$2" != microk8s ]; then
          [ -e "$STATE/snap-$2" ] || exit 1
          echo "Name Version Rev Tracking Publisher Notes"; echo "$2 x $(cat "$STATE/snap-$2") - canonical base$(held_note "$2")"; exit 0
        fi;;
  refresh) case ${2:-} in
             --hold) if [ $# -eq 2 ]; then echo forever > "$STATE/refresh-hold"; else shift 2; for s in "$@"; do : > "$STATE/held-$s"; done; fi; exit 0;;
             --unhold) if [ $# -eq 2 ]; then rm -f "$STATE/refresh-hold"; else shift 2; for s in "$@"; do rm -f "$STATE/held-$s"; done; fi; exit 0;;
           esac;;
  get) [ "$2" = system ] && [[ $3 == refresh.hold || $3 == store.access ]] || exit 1
       f=$STATE/${3/./-}
       [ -s "$f" ] || { echo "error: snap \"core\" has no \"$3\" configuration option" >&2; exit 1; }
       cat "$f"; exit 0;;
  set) [ "$2" = system ] || exit 1
       case $3 in
         refresh.hold=*) echo "${3#refresh.hold=}" > "$STATE/refresh-hold"; exit 0;;
         store.access=*)
           printf '%s\n' 2.61 "$(cat "$STATE/snapd-version" 2>/dev/null || echo 2.66.1+22.04)" | sort -C -V \
             || { echo 'error: cannot perform the following tasks:' >&2; echo '- Run configure hook of "core" snap (cannot set "core.store.access": unsupported system option)' >&2; exit 1; }
           [ "${3#store.access=}" = offline ] || { echo "error: store access can only be set to 'offline'" >&2; exit 1; }
           echo offline > "$STATE/store-access"; exit 0;;
       esac; exit 1;;
  unset) [ "$2 $3" = "system store.access" ] || exit 1; rm -f "$STATE/store-access"; exit 0;;
  version) v=$(cat "$STATE/snapd-version" 2>/dev/null || echo 2.66.1+22.04); printf 'snap    %s\nsnapd   %s\nseries  16\n' "$v" "$v"; exit 0;;
  remove) rm -f "$STATE/held-$2"; [ "$2" = microk8s ] || { rm -f "$STATE/snap-$2"; exit 0; };;
esac
'''
