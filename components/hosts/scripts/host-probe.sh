#!/usr/bin/env bash
# First login to a host: prove it can run hybrid-ai's scripts, and report what it is.
# Read-only: changes nothing on the host.
set -euo pipefail
SCRIPT_NAME="probe"

[ "$(id -u)" -eq 0 ] || fail "not running as root; the SSH user needs password-less sudo"
command -v apt-get >/dev/null || fail "apt-get not found; hybrid-ai supports Debian and Ubuntu hosts"

os_id=unknown os_version=unknown
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  os_id=${ID:-unknown} os_version=${VERSION_ID:-unknown}
fi
echo "os=${os_id}"
echo "os_version=${os_version}"
echo "arch=$(uname -m)"
echo "cpus=$(nproc)"
echo "memory_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
