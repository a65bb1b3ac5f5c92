#!/usr/bin/env bash
# On the control plane: the admin kubeconfig, pointed at SERVER (public or VPN address).
# Its output holds credentials: the program marks it secret and keeps it out of logs.
# It flows to the program's Kubernetes provider, so it is parsed strictly first: every line
# must be one `microk8s config` writes (client.config.template), with exactly one cluster
# and one server; anything else fails this step, naming the host, and is not echoed.
# Parameters: SERVER.
set -euo pipefail
SCRIPT_NAME="kubeconfig"
: "${SERVER:?}"
config=$(microk8s config) || fail "microk8s config failed"
name='[A-Za-z0-9._-]+'
b64='[A-Za-z0-9+/]+={0,2}'
allowed="^(apiVersion: v1|clusters:|- cluster:|    certificate-authority-data: $b64|    server: https://[^ ]+:16443|  name: $name"
allowed+="|contexts:|- context:|    cluster: $name|    user: $name|current-context: $name|kind: Config|preferences: \{\}"
allowed+="|users:|- name: $name|  user:|    client-certificate-data: $b64|    client-key-data: $b64|    (username|password|token): $name|)$"
bad=$(grep -cvxE "$allowed" <<<"$config" || true)
[ "$bad" = 0 ] || fail "microk8s config printed $bad line(s) that are not part of a MicroK8s kubeconfig; not passing it on"
if [ "$(grep -c '^    server: ' <<<"$config")" != 1 ] || [ "$(grep -c '^- cluster:' <<<"$config")" != 1 ]; then
  fail "microk8s config did not print exactly one cluster and one server"
fi
awk -v server="https://$SERVER:16443" '/^    server: / { $0 = "    server: " server } { print }' <<<"$config"
