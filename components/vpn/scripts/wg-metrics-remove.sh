#!/usr/bin/env bash
# Undo wg-metrics-install.sh: stop the timer, remove its units, the collector and its output.
# Parameters (set above by the program): TEXTFILE_DIR, LIB_DIR, UNIT_DIR. Safe to run twice.
# Helpers (log, fail, report) come from lib.sh.
SCRIPT_NAME=wg-metrics-remove

if [ -e "$UNIT_DIR/hybrid-ai-wg-metrics.timer" ]; then
  systemctl disable --now hybrid-ai-wg-metrics.timer || true
  changed+=("timer")
fi
for f in "$UNIT_DIR/hybrid-ai-wg-metrics.timer" "$UNIT_DIR/hybrid-ai-wg-metrics.service" \
         "$LIB_DIR/wg-metrics.sh" "$TEXTFILE_DIR/wireguard.prom"; do
  [ -e "$f" ] && rm -f "$f" && changed+=("$(basename "$f")")
done
[ "${#changed[@]}" -gt 0 ] && systemctl daemon-reload
report
