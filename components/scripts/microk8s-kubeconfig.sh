#!/usr/bin/env bash
# On the control plane: the admin kubeconfig, pointed at SERVER (public or VPN address).
# Its output holds credentials: the program marks it secret and keeps it out of logs.
# Parameters: SERVER.
set -euo pipefail
SCRIPT_NAME="kubeconfig"
: "${SERVER:?}"
microk8s config | sed "s|^\( *server: \).*|\1https://$SERVER:16443|"
