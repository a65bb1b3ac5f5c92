"""netmaker-server.sh under stubs: it refuses a small hub, writes its config once with the master
key only in a private file, and runs the broker the way Netmaker's own compose file does."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.netmaker import MASTER
from tests.support.stubs import StubHost


def test_server_refuses_a_small_hub(tmp_path: Path) -> None:
    h = StubHost(tmp_path)
    result = h.run("netmaker-server.sh", stdin=MASTER, NM_VERSION="v0.90.0", NM_DOMAIN="nm.example.com", PUBLIC_IP="203.0.113.10",
                   MIN_MEMORY_MB="100000000", NM_DIR=str(tmp_path / "nm"))
    assert result.returncode == 1
    assert "the Netmaker server needs at least 100000000 MB: use a bigger hub" in result.stderr
    assert h.state_changes() == []


def test_server_writes_its_config_once_with_the_key_only_in_a_private_file(tmp_path: Path) -> None:
    docker = 'case "$*" in *"ps -q"*) cat "$STATE/running" 2>/dev/null;; *"up -d"*) echo id > "$STATE/running";; esac; exit 0'
    h = StubHost(tmp_path, stubs={"docker": docker})
    for pkg in ("docker.io", "docker-compose-v2", "jq", "curl"):
        (h.state / "installed" / pkg).touch()
    params = {"NM_VERSION": "v0.90.0", "NM_DOMAIN": "nm.example.com", "PUBLIC_IP": "203.0.113.10", "MIN_MEMORY_MB": "1",
              "NM_DIR": str(tmp_path / "nm")}
    first = h.run("netmaker-server.sh", stdin=MASTER, **params)
    assert first.returncode == 0, first.stderr
    env = tmp_path / "nm" / "netmaker.env"
    assert env.stat().st_mode & 0o777 == 0o600 and "MASTER_KEY=MASTERKEY-" in env.read_text()
    assert "image: gravitl/netmaker:v0.90.0" in (tmp_path / "nm" / "docker-compose.yml").read_text()
    assert not [c for c in h.calls() if "MASTERKEY" in c]
    again = h.run("netmaker-server.sh", stdin=MASTER, **params)
    assert again.stdout.strip() == "changed=none"
    assert not [c for c in h.calls() if "up -d" in c]


def run_server(tmp_path: Path) -> tuple[StubHost, Path]:
    docker = 'case "$*" in *"ps -q"*) cat "$STATE/running" 2>/dev/null;; *"up -d"*) echo id > "$STATE/running";; esac; exit 0'
    h = StubHost(tmp_path, stubs={"docker": docker})
    for pkg in ("docker.io", "docker-compose-v2", "jq", "curl"):
        (h.state / "installed" / pkg).touch()
    nm = tmp_path / "nm"
    result = h.run("netmaker-server.sh", stdin=MASTER, NM_VERSION="v0.90.0", NM_DOMAIN="nm.example.com",
                   PUBLIC_IP="203.0.113.10", MIN_MEMORY_MB="1", NM_DIR=str(nm))
    assert result.returncode == 0, result.stderr
    return h, nm


def test_server_runs_mosquitto_the_way_netmakers_compose_does(tmp_path: Path) -> None:
    # gravitl/netmaker v0.90.0: compose/docker-compose.yml mounts docker/mosquitto.conf (websockets
    # listeners 8883 and 1883, no anonymous access, password_file) and runs docker/wait.sh, which
    # builds the password file from MQ_USERNAME/MQ_PASSWORD; scripts/netmaker.default.env sets
    # SERVER_BROKER_ENDPOINT=ws://mq:1883 for the server inside compose.
    _, nm = run_server(tmp_path)
    compose = yaml.safe_load((nm / "docker-compose.yml").read_text())
    mq = compose["services"]["mq"]
    assert mq["command"] == ["/mosquitto/config/mq-start.sh"] and mq["env_file"] == "./mq.env"
    assert {"./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro", "./mq-start.sh:/mosquitto/config/mq-start.sh:ro"} <= set(mq["volumes"])
    conf = (nm / "mosquitto.conf").read_text().split("\n")
    for port in ("8883", "1883"):
        i = conf.index(f"listener {port}")
        assert conf[i + 1: i + 3] == ["protocol websockets", "allow_anonymous false"]
    assert "password_file /mosquitto/password.txt" in conf
    start = (nm / "mq-start.sh").read_text()
    assert "mosquitto_passwd -U /mosquitto/password.txt" in start and "exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf" in start
    assert (nm / "mq-start.sh").stat().st_mode & 0o111
    env = dict(line.split("=", 1) for line in (nm / "netmaker.env").read_text().splitlines())
    mq_env = dict(line.split("=", 1) for line in (nm / "mq.env").read_text().splitlines())
    assert env["SERVER_BROKER_ENDPOINT"] == "ws://mq:1883" and env["BROKER_ENDPOINT"] == "wss://broker.nm.example.com"
    assert mq_env == {"MQ_USERNAME": env["MQ_USERNAME"], "MQ_PASSWORD": env["MQ_PASSWORD"]}  # not the master key
    assert "reverse_proxy mq:8883" in (nm / "Caddyfile").read_text()
