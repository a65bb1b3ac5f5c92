"""The snap stand-in's part for mirrored sites (prepended to `cluster_stubs`' snap stub): `snap ack`,
a base snap's `snap list`, `snap refresh --hold`, and installing a local file. As snapd: a local
file installs (without --dangerous) only once its assertions are acked ("cannot find signatures
with metadata for snap"), and then tracks no channel ("-"); a base snap is only recorded."""

SNAP_FILES_STUB = '''
# A local file (mirrored sites): snapd installs it only once its assertions are acked (without
# --dangerous), and then it tracks no channel ("-"); a base snap is only recorded.
local_file() {
  local file=${!#} base
  base=$(basename "$file" .snap)
  [ -e "$STATE/acked-$base" ] || { echo "error: cannot find signatures with metadata for snap \"$file\"" >&2; exit 1; }
  case $base in
    microk8s_*) echo - > "$STATE/snap-channel"; echo "${base#*_}" > "$STATE/snap-rev";;
    *) : > "$STATE/snap-${base%_*}"; exit 0;;
  esac
}
case $1 in
  ack) [ -s "$2" ] || { echo "error: cannot read assertion file" >&2; exit 1; }; : > "$STATE/acked-$(basename "$2" .assert)"; exit 0;;
  list) if [ -n "${2:-}" ] && [ "$2" != microk8s ]; then
          [ -e "$STATE/snap-$2" ] || exit 1; echo "Name Version Rev Tracking Publisher Notes"; echo "$2 x 1 latest/stable canonical base"; exit 0
        fi;;
  refresh) [ "${2:-}" != --hold ] || { echo "${3:-all}" >> "$STATE/snap-held"; exit 0; };;
esac
'''
