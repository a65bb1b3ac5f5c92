#!/usr/bin/env bash
# Time sync, composed after lib.sh into a script that has the line `# uses: timesync.sh`:
# base-bootstrap.sh, which installs chrony where this says so, and mirrors.sh, whose preflight
# then checks chrony on the mirror (one test for both, so they cannot disagree).

# True when no time daemon runs and systemd-timesyncd is not there to be started: then chrony
# is installed (Kubernetes certificates and WireGuard handshakes need a sane clock).
needs_chrony() {
  ! systemctl is-active --quiet systemd-timesyncd && ! systemctl is-active --quiet chrony \
    && ! systemctl list-unit-files systemd-timesyncd.service >/dev/null 2>&1
}
