#!/usr/bin/env bash
# Install wg-metrics.sh and a systemd timer that runs it every INTERVAL_SECONDS, writing into
# node-exporter's textfile directory. Parameters (set above by the program): COLLECTOR (the
# text of wg-metrics.sh), VPN_IFACE, TEXTFILE_DIR, INTERVAL_SECONDS, LIB_DIR, UNIT_DIR.
# A second run with the same parameters changes nothing (last line: "changed=none").
# Helpers (log, fail, report) come from lib.sh.
SCRIPT_NAME=wg-metrics-install

[[ $VPN_IFACE =~ ^[A-Za-z0-9_=+.-]{1,15}$ ]] || fail "VPN_IFACE '$VPN_IFACE' is not an interface name"
[[ $INTERVAL_SECONDS =~ ^[1-9][0-9]{0,3}$ ]] || fail "INTERVAL_SECONDS '$INTERVAL_SECONDS' is not a number of seconds"
[[ $TEXTFILE_DIR =~ ^/[A-Za-z0-9/_.-]+$ ]] || fail "TEXTFILE_DIR '$TEXTFILE_DIR' is not an absolute path"

install_text() {  # FILE MODE TEXT: write TEXT (ending in one newline) only when different; true when it wrote
  local file=$1 mode=$2 text=${3%$'\n'}
  [ -f "$file" ] && [ "$(cat "$file")" = "$text" ] && return 1
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$text" > "$file.tmp"
  chmod "$mode" "$file.tmp"
  mv "$file.tmp" "$file"
}

service="[Unit]
Description=hybrid-ai: WireGuard peer metrics for node-exporter
After=wg-quick@$VPN_IFACE.service

[Service]
Type=oneshot
Environment=VPN_IFACE=$VPN_IFACE TEXTFILE_DIR=$TEXTFILE_DIR
ExecStart=$LIB_DIR/wg-metrics.sh"
timer="[Unit]
Description=hybrid-ai: WireGuard peer metrics every ${INTERVAL_SECONDS}s

[Timer]
OnBootSec=${INTERVAL_SECONDS}s
OnUnitActiveSec=${INTERVAL_SECONDS}s
AccuracySec=1s

[Install]
WantedBy=timers.target"

# The folders this install makes, listed for wg-metrics-remove.sh to take back (only those).
made=()
for d in "$LIB_DIR" "$(dirname "$TEXTFILE_DIR")" "$TEXTFILE_DIR"; do
  [ -d "$d" ] || made+=("$d")
done
mkdir -p "$LIB_DIR" "$TEXTFILE_DIR"
[ "${#made[@]}" -eq 0 ] || printf '%s\n' "${made[@]}" >> "$LIB_DIR/wg-metrics.folders"
units=0
install_text "$LIB_DIR/wg-metrics.sh" 0755 "$COLLECTOR" && changed+=("collector")
install_text "$UNIT_DIR/hybrid-ai-wg-metrics.service" 0644 "$service" && { changed+=("service"); units=1; }
install_text "$UNIT_DIR/hybrid-ai-wg-metrics.timer" 0644 "$timer" && { changed+=("timer"); units=1; }
mkdir -p "$TEXTFILE_DIR"
if [ "$units" = 1 ]; then
  systemctl daemon-reload
  systemctl enable hybrid-ai-wg-metrics.timer
  systemctl restart hybrid-ai-wg-metrics.timer  # re-arms a running timer with the new interval
elif ! systemctl is-enabled --quiet hybrid-ai-wg-metrics.timer || ! systemctl is-active --quiet hybrid-ai-wg-metrics.timer; then
  systemctl enable --now hybrid-ai-wg-metrics.timer
  changed+=("enabled")
fi
report
