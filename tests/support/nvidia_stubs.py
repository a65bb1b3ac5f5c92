"""Recording stubs of the NVIDIA tools (`nvidia-smi`, `ubuntu-drivers`, `nvidia-ctk`) and `mokutil`, with
state in files, as the driver and toolkit behave in the facts the scripts rely on
(docs/upstream.md). Part of the cluster stubs (`cluster_stubs.STUBS`)."""

from __future__ import annotations

NVIDIA_STUBS = {
    # The kernel module is the branch loaded at boot ($STATE/driver-branch: 535 unless a test
    # rebooted into another), the tools the newest installed nvidia-driver-<branch>'s; after an
    # upgrade, until the reboot loads the new module, NVML refuses them (a version mismatch).
    "nvidia-smi": """
[ -e "$STATE/driver-loaded" ] || { echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2; exit 9; }
loaded=$(cat "$STATE/driver-branch" 2>/dev/null || echo 535)
tools=$(find "$STATE/installed" -name 'nvidia-driver-[0-9]*' -printf '%f\\n' | sed 's/^nvidia-driver-\\([0-9]*\\).*/\\1/' | sort -n | tail -n 1)
[ -z "$tools" ] || [ "$tools" = "$loaded" ] || { echo "Failed to initialize NVML: Driver/library version mismatch"; exit 18; }
case $1 in
  -L) for i in $(seq 1 "$(cat "$STATE/driver-loaded")"); do echo "GPU $((i - 1)): NVIDIA GeForce RTX 3090 (UUID: GPU-$i)"; done;;
  *) echo "$loaded.183.01";;
esac""",
    # ubuntu-drivers-common 0.9.6.2~0.22.04.9 and 0.9.7.6ubuntu3.2 (docs/upstream.md). The archive's
    # drivers for this GPU: $STATE/archive (branches, newest first), the recommended one first
    # ($STATE/recommended); $STATE/dkms-only names the branches without linux-modules-nvidia for
    # the host's kernel (flavour: $STATE/kernel-flavour); transitional packages ($STATE/transitional)
    # are never offered. `list` prints "<driver>, (kernel modules provided by <modules>)" and leaves
    # DKMS-only drivers out; `install [nvidia:]<branch>` (none: the first driver not installed)
    # installs the driver with its signed modules through apt-get, passes over installed and
    # DKMS-only ones (taken, modules by DKMS, with --include-dkms), and exits 0 whatever apt-get
    # did; an unknown option is click's usage error.
    "ubuntu-drivers": """
archive=$(cat "$STATE/archive" 2>/dev/null || echo "580 570 550-server 550 535-server 535")
recommended=$(cat "$STATE/recommended" 2>/dev/null || echo 535)
flavour=$(cat "$STATE/kernel-flavour" 2>/dev/null || echo generic)
signed() { ! grep -qxF -- "$1" "$STATE/dkms-only" 2>/dev/null; }
# A transitional nvidia-driver-N has no Modaliases: ubuntu-drivers never offers it.
archive=$(for b in $archive; do [ -e "$STATE/transitional/nvidia-driver-$b" ] || echo "$b"; done)
[ "${1:-}" = --gpgpu ] && shift
case ${1:-} in
  list)
    for b in $archive; do signed "$b" && echo "nvidia-driver-$b, (kernel modules provided by linux-modules-nvidia-$b-$flavour)"; done
    exit 0;;
  install) shift;;
  *) echo "Error: No such command '${1:-}'." >&2; exit 2;;
esac
want="" dkms=no
# What apt-get will read first (APT_CONFIG), kept for the tests.
[ -z "${APT_CONFIG:-}" ] || cp "$APT_CONFIG" "$STATE/apt-config-seen"
for a in "$@"; do
  case $a in
    --include-dkms) dkms=yes;;
    --gpgpu|--free-only|--no-oem|--recommended) ;;
    -*) echo "Error: No such option: $a" >&2; exit 2;;
    *) want=$a;;
  esac
done
case $want in
  "") candidates="$recommended $archive";;
  nvidia:[0-9]*|[0-9]*) candidates=$(for b in $archive; do [ "$b" = "${want#nvidia:}" ] && echo "$b"; done);;
  *) candidates="";;
esac
to_install=""
for b in $candidates; do
  [ -e "$STATE/installed/nvidia-driver-$b" ] && continue
  if signed "$b"; then
    to_install="nvidia-driver-$b linux-modules-nvidia-$b-$flavour"
  elif [ "$dkms" = yes ]; then
    to_install="nvidia-driver-$b"  # its modules from nvidia-dkms-<b>, a Depends
  else
    continue
  fi
  break
done
[ -n "$to_install" ] || { echo "All the available drivers are already installed."; exit 0; }
apt-get install -o DPkg::options::=--force-confnew -y $to_install
exit 0""",
    # mokutil 0.6.0 --sb-state ($STATE/secure-boot: enabled, disabled, or shim-off: enabled with
    # shim not validating); no file: a BIOS boot, where mokutil finds no EFI variables.
    "mokutil": """
[ "$*" = --sb-state ] || exit 0
case $(cat "$STATE/secure-boot" 2>/dev/null) in
  enabled) echo "SecureBoot enabled";;
  shim-off) echo "SecureBoot enabled"; echo "SecureBoot validation is disabled in shim";;
  disabled) echo "SecureBoot disabled";;
  *) echo "EFI variables are not supported on this system" >&2; exit 1;;
esac""",
    # nvidia-ctk runtime configure (toolkit >= 1.18): the runtime `nvidia` goes into a drop-in
    # (/etc/containerd/conf.d/99-nvidia.toml, imported from --config) unless --drop-in-config=''.
    "nvidia-ctk": """
[ "$1 $2" = "runtime configure" ] || exit 0
case $* in *--help*) echo '   --drop-in-config value  path to the NVIDIA-specific config file to create'; exit 0;; esac
config=/etc/containerd/config.toml; dropin=$STATE/etc/containerd/conf.d/99-nvidia.toml
for a in "$@"; do case $a in --config=*) config=${a#--config=};; --drop-in-config=*) dropin=${a#--drop-in-config=};; esac; done
section='[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]'
body='  runtime_type = "io.containerd.runc.v2"'
if [ -n "$dropin" ]; then
  mkdir -p "$(dirname "$dropin")"; printf '%s\\n%s\\n' "$section" "$body" > "$dropin"
  sed -i "1i imports = [\\"$dropin\\"]" "$config"
else
  printf '\\n%s\\n%s\\n' "$section" "$body" >> "$config"
fi""",
}
