#!/usr/bin/env bash
# The Netmaker server on the VPN hub (docker compose: netmaker, its UI, mosquitto, caddy),
# pinned to NM_VERSION. The master key (the admin credential) arrives on stdin and is only
# written to a root-only env file. Idempotent: an unchanged configuration restarts nothing.
# Parameters: HOST_NAME, NM_VERSION, NM_DOMAIN, PUBLIC_IP, MIN_MEMORY_MB, NM_DIR.
set -euo pipefail
SCRIPT_NAME="netmaker-server"
: "${NM_VERSION:?}" "${NM_DOMAIN:?}" "${PUBLIC_IP:?}" "${MIN_MEMORY_MB:=2048}" "${NM_DIR:=/opt/hybrid-ai/netmaker}"
IFS= read -r master_key || true
[ "${#master_key}" -ge 32 ] || fail "no master key on stdin"

memory_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
[ "$memory_mb" -ge "$MIN_MEMORY_MB" ] || fail "this hub has ${memory_mb} MB of memory; the Netmaker server needs at least ${MIN_MEMORY_MB} MB: use a bigger hub"

missing=()
for pkg in docker.io docker-compose-v2 jq curl; do installed "$pkg" || missing+=("$pkg"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get -o DPkg::Lock::Timeout=120 update -q || fail "apt-get update failed"
  retry apt-get -o DPkg::Lock::Timeout=120 install -y -q "${missing[@]}" || fail "could not install ${missing[*]}"
  changed+=("packages")
fi

umask 077
mkdir -p "$NM_DIR"
new_env=$(mktemp) new_compose=$(mktemp) new_caddy=$(mktemp)
trap 'rm -f "$new_env" "$new_compose" "$new_caddy"' EXIT
{
  echo "SERVER_HOST=$PUBLIC_IP"
  echo "NM_DOMAIN=$NM_DOMAIN"
  echo "SERVER_NAME=$NM_DOMAIN"
  echo "API_PORT=8081"
  echo "BROKER_ENDPOINT=wss://broker.$NM_DOMAIN"
  echo "SERVER_API_CONN_STRING=api.$NM_DOMAIN:443"
  echo "MASTER_KEY=$master_key"
  echo "MQ_USERNAME=netmaker"
  echo "MQ_PASSWORD=$(printf '%s' "$master_key" | sha256sum | cut -c1-32)"
  echo "DATABASE=sqlite"
  echo "TELEMETRY=off"
} > "$new_env"
cat > "$new_compose" <<COMPOSE
services:
  netmaker:
    image: gravitl/netmaker:$NM_VERSION
    env_file: ./netmaker.env
    restart: always
    volumes: [netmaker-data:/root/data]
  netmaker-ui:
    image: gravitl/netmaker-ui:$NM_VERSION
    environment: {BACKEND_URL: "https://api.$NM_DOMAIN"}
    restart: always
  mq:
    image: eclipse-mosquitto:2.0.20-openssl
    restart: always
  caddy:
    image: caddy:2.8.4
    ports: ["80:80", "443:443"]
    volumes: [./Caddyfile:/etc/caddy/Caddyfile:ro, caddy-data:/data]
    restart: always
volumes: {netmaker-data: {}, caddy-data: {}}
COMPOSE
cat > "$new_caddy" <<CADDY
api.$NM_DOMAIN {
  reverse_proxy netmaker:8081
}
broker.$NM_DOMAIN {
  reverse_proxy mq:8883
}
dashboard.$NM_DOMAIN {
  reverse_proxy netmaker-ui:80
}
CADDY
restart=no
for pair in "$new_env:netmaker.env" "$new_compose:docker-compose.yml" "$new_caddy:Caddyfile"; do
  src=${pair%%:*} dst=$NM_DIR/${pair#*:}
  if ! cmp -s "$src" "$dst"; then
    install -m 600 "$src" "$dst"
    changed+=("${pair#*:}"); restart=yes
  fi
done
if [ "$restart" = yes ] || [ -z "$(docker compose --project-directory "$NM_DIR" ps -q netmaker 2>/dev/null)" ]; then
  retry docker compose --project-directory "$NM_DIR" up -d --quiet-pull || fail "docker compose up failed; see: docker compose --project-directory $NM_DIR logs"
  changed+=("started")
fi

# The API answers once the server is up (bounded).
tries=60
until docker compose --project-directory "$NM_DIR" exec -T netmaker wget -qO- http://127.0.0.1:8081/api/server/health >/dev/null 2>&1; do
  tries=$((tries - 1))
  [ "$tries" -gt 0 ] || fail "the Netmaker API did not come up within 5 minutes; see: docker compose --project-directory $NM_DIR logs netmaker"
  sleep 5
done
report
