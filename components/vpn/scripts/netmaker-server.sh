#!/usr/bin/env bash
# The Netmaker server on the VPN hub (docker compose: netmaker, its UI, mosquitto, caddy),
# pinned to NM_VERSION. The master key (the admin credential) arrives on stdin and is only
# written to a root-only env file. Idempotent: an unchanged configuration restarts nothing.
# As Netmaker's own compose at that version: the server reaches mosquitto inside compose at
# SERVER_BROKER_ENDPOINT=ws://mq:1883; clients at wss://broker.<domain> through caddy to the
# websockets listener on 8883; no anonymous access, the password file built from
# MQ_USERNAME/MQ_PASSWORD when the broker starts.
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
new_env=$(mktemp) new_compose=$(mktemp) new_caddy=$(mktemp) new_mq_env=$(mktemp) new_mq_conf=$(mktemp) new_mq_start=$(mktemp)
trap 'rm -f "$new_env" "$new_compose" "$new_caddy" "$new_mq_env" "$new_mq_conf" "$new_mq_start"' EXIT
mq_password=$(printf '%s' "$master_key" | sha256sum | cut -c1-32)
{
  echo "SERVER_HOST=$PUBLIC_IP"
  echo "NM_DOMAIN=$NM_DOMAIN"
  echo "SERVER_NAME=$NM_DOMAIN"
  echo "API_PORT=8081"
  echo "BROKER_ENDPOINT=wss://broker.$NM_DOMAIN"
  echo "SERVER_BROKER_ENDPOINT=ws://mq:1883"
  echo "SERVER_API_CONN_STRING=api.$NM_DOMAIN:443"
  echo "MASTER_KEY=$master_key"
  echo "MQ_USERNAME=netmaker"
  echo "MQ_PASSWORD=$mq_password"
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
    env_file: ./mq.env
    command: ["/mosquitto/config/mq-start.sh"]
    volumes: [./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro, ./mq-start.sh:/mosquitto/config/mq-start.sh:ro, mq-data:/mosquitto/data]
    restart: always
  caddy:
    image: caddy:2.8.4
    ports: ["80:80", "443:443"]
    volumes: [./Caddyfile:/etc/caddy/Caddyfile:ro, caddy-data:/data]
    restart: always
volumes: {netmaker-data: {}, caddy-data: {}, mq-data: {}}
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
# The broker gets only its own credentials, not the master key.
printf 'MQ_USERNAME=netmaker\nMQ_PASSWORD=%s\n' "$mq_password" > "$new_mq_env"
cat > "$new_mq_conf" <<'MOSQUITTO'
per_listener_settings false
listener 8883
protocol websockets
allow_anonymous false
listener 1883
protocol websockets
allow_anonymous false
password_file /mosquitto/password.txt
MOSQUITTO
cat > "$new_mq_start" <<'MQSTART'
#!/bin/sh
# The broker's password file from MQ_USERNAME/MQ_PASSWORD (env file), hashed, then mosquitto.
set -eu
umask 077
printf '%s:%s\n' "$MQ_USERNAME" "$MQ_PASSWORD" > /mosquitto/password.txt
mosquitto_passwd -U /mosquitto/password.txt
chown mosquitto:mosquitto /mosquitto/password.txt
exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
MQSTART
restart=no
for entry in "$new_env:netmaker.env:600" "$new_compose:docker-compose.yml:600" "$new_caddy:Caddyfile:600" \
             "$new_mq_env:mq.env:600" "$new_mq_conf:mosquitto.conf:644" "$new_mq_start:mq-start.sh:755"; do
  IFS=: read -r src file mode <<< "$entry"
  dst=$NM_DIR/$file
  if ! cmp -s "$src" "$dst"; then
    install -m "$mode" "$src" "$dst"
    changed+=("$file"); restart=yes
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
