"""wg-metrics.sh (WireGuard peer metrics for node-exporter's textfile collector) and the
timer that runs it, under recording stubs (output format, idempotence, removal), and the collector
against a real `wg` after a real handshake (wireguard-go in two network namespaces, root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from components.kit.shell import script_path, script_text
from tests.support.helpers import PROJECT, stop_processes, unavailable
from tests.support.stubs import StubHost

HUB = "x" * 42 + "A="
WS2 = "y" * 42 + "E="
# `wg show wg0 dump` (wg(8), wireguard-tools): the interface line (private-key, public-key,
# listen-port, fwmark), then per peer: public-key, preshared-key, endpoint, allowed-ips,
# latest-handshake, transfer-rx, transfer-tx, persistent-keepalive; tab-separated.
DUMP = (
    "PRIVATE\t" + "z" * 42 + "Q=\t51820\toff\n"
    f"{HUB}\t(none)\t203.0.113.10:51820\t100.64.0.1/32,100.64.0.0/10\t1764250000\t12345\t67890\t25\n"
    f"{WS2}\t(none)\t(none)\t100.64.0.3/32\t0\t0\t148\toff\n"
)
WG_STUB = """
[ "$1 $2 $3" = "show wg0 dump" ] || { echo "Unable to access interface: No such device" >&2; exit 1; }
cat "$STATE/wg-dump" """


def host(tmp_path: Path) -> StubHost:
    h = StubHost(tmp_path, stubs={"wg": WG_STUB})
    (h.state / "wg-dump").write_text(DUMP)
    return h


def test_collector_writes_each_peers_handshake_and_transfer(tmp_path: Path) -> None:
    h = host(tmp_path)
    out = tmp_path / "textfile"
    result = h.run("wg-metrics.sh", VPN_IFACE="wg0", TEXTFILE_DIR=str(out))
    assert result.returncode == 0, result.stderr
    text = (out / "wireguard.prom").read_text()
    labels = f'interface="wg0",public_key="{HUB}",allowed_ips="100.64.0.1/32,100.64.0.0/10"'
    assert f"hybridai_wireguard_peer_last_handshake_seconds{{{labels}}} 1764250000\n" in text
    assert f"hybridai_wireguard_peer_receive_bytes_total{{{labels}}} 12345\n" in text
    assert f"hybridai_wireguard_peer_transmit_bytes_total{{{labels}}} 67890\n" in text
    assert f'hybridai_wireguard_peer_last_handshake_seconds{{interface="wg0",public_key="{WS2}",allowed_ips="100.64.0.3/32"}} 0\n' in text
    assert [p.name for p in out.iterdir()] == ["wireguard.prom"]  # no temporary file left
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool not installed (Debian package `prometheus`)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_collector_names_are_the_catalogs() -> None:
    catalog = yaml.safe_load((PROJECT / "charts/monitoring/metrics.yaml").read_text())
    ours = set(next(v for k, v in catalog.items() if k.startswith("wg-metrics.sh")))
    written = {w for w in script_text("wg-metrics.sh").split() if w.startswith("hybridai_wireguard_")}
    assert written == ours


def test_collector_keeps_the_old_file_when_wg_fails(tmp_path: Path) -> None:
    h = host(tmp_path)
    out = tmp_path / "textfile"
    assert h.run("wg-metrics.sh", VPN_IFACE="wg0", TEXTFILE_DIR=str(out)).returncode == 0
    before = (out / "wireguard.prom").read_text()
    assert h.run("wg-metrics.sh", VPN_IFACE="wg9", TEXTFILE_DIR=str(out)).returncode != 0
    assert (out / "wireguard.prom").read_text() == before  # its growing age shows on the mesh dashboard


def install_params(tmp_path: Path, interval: str = "30") -> dict[str, str]:
    return {"COLLECTOR": script_text("wg-metrics.sh"), "VPN_IFACE": "wg0", "INTERVAL_SECONDS": interval,
            "TEXTFILE_DIR": str(tmp_path / "textfile"), "LIB_DIR": str(tmp_path / "lib"), "UNIT_DIR": str(tmp_path / "units")}


def test_install_writes_the_timer_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    h = host(tmp_path)
    params = install_params(tmp_path)
    first = h.run("wg-metrics-install.sh", **params)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().endswith("changed=collector service timer")
    assert h.calls()[-2:] == ["systemctl enable hybrid-ai-wg-metrics.timer", "systemctl restart hybrid-ai-wg-metrics.timer"]
    timer = (tmp_path / "units/hybrid-ai-wg-metrics.timer").read_text()
    assert "OnUnitActiveSec=30s\n" in timer and "WantedBy=timers.target" in timer
    service = (tmp_path / "units/hybrid-ai-wg-metrics.service").read_text()
    assert f"Environment=VPN_IFACE=wg0 TEXTFILE_DIR={tmp_path}/textfile\n" in service
    assert f"ExecStart={tmp_path}/lib/wg-metrics.sh" in service
    assert (tmp_path / "lib/wg-metrics.sh").read_text() == script_text("wg-metrics.sh")
    again = h.run("wg-metrics-install.sh", **params)
    assert again.returncode == 0 and again.stdout.strip().endswith("changed=none")
    assert h.state_changes() == []
    changed = h.run("wg-metrics-install.sh", **install_params(tmp_path, "60"))
    assert changed.stdout.strip().endswith("changed=timer")


def test_install_refuses_values_that_would_break_the_units(tmp_path: Path) -> None:
    h = host(tmp_path)
    for key, bad in (("VPN_IFACE", "wg0\nExecStartPre=/bin/sh"), ("INTERVAL_SECONDS", "0"), ("TEXTFILE_DIR", "relative")):
        result = h.run("wg-metrics-install.sh", **(install_params(tmp_path) | {key: bad}))
        assert result.returncode != 0 and key in result.stderr, key
        assert not (tmp_path / "units").exists()


def test_remove_undoes_the_install_once(tmp_path: Path) -> None:
    h = host(tmp_path)
    params = install_params(tmp_path)
    assert h.run("wg-metrics-install.sh", **params).returncode == 0
    assert h.run("wg-metrics.sh", VPN_IFACE="wg0", TEXTFILE_DIR=params["TEXTFILE_DIR"]).returncode == 0
    paths = {k: params[k] for k in ("TEXTFILE_DIR", "LIB_DIR", "UNIT_DIR")}
    removed = h.run("wg-metrics-remove.sh", **paths)
    assert removed.returncode == 0, removed.stderr
    assert h.calls()[0] == "systemctl disable --now hybrid-ai-wg-metrics.timer"
    # The folders it made go once empty; the unit folder is the system's.
    assert not list((tmp_path / "units").iterdir()) and not (tmp_path / "lib").exists() and not (tmp_path / "textfile").exists()
    again = h.run("wg-metrics-remove.sh", **paths)
    assert again.returncode == 0 and again.stdout.strip().endswith("changed=none") and h.calls() == []


# --- Against a real WireGuard (userspace wireguard-go in two network namespaces) ----------

def _sh(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.mark.e2e
def test_collector_reads_a_real_wg_dump_after_a_handshake(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "wg", "wireguard-go", "ping")):
        unavailable("needs root, ip, wg, wireguard-go and ping (network namespaces)")
    tag = f"{os.getpid() % 100000}"
    ns = {side: f"hai-mm-{tag}-{side}" for side in "ab"}
    iface = {side: f"mm{tag}{side}" for side in "ab"}
    under = {"a": "198.51.100.201", "b": "198.51.100.202"}
    over = {"a": "100.64.250.1", "b": "100.64.250.2"}
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        for side in "ab":
            _sh("ip", "netns", "add", ns[side])
        _sh("ip", "link", "add", f"v{tag}a", "netns", ns["a"], "type", "veth", "peer", f"v{tag}b", "netns", ns["b"])
        keys = {side: _sh("wg", "genkey").strip() for side in "ab"}
        for side in "ab":
            run = ("ip", "netns", "exec", ns[side])
            _sh(*run, "ip", "addr", "add", f"{under[side]}/24", "dev", f"v{tag}{side}")
            _sh(*run, "ip", "link", "set", f"v{tag}{side}", "up")
            daemons.append(subprocess.Popen([*run, "wireguard-go", iface[side]], env=dict(os.environ, WG_PROCESS_FOREGROUND="1"),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for side, other in (("a", "b"), ("b", "a")):
            run = ("ip", "netns", "exec", ns[side])
            daemon = daemons["ab".index(side)]
            deadline = time.monotonic() + 30  # wireguard-go creates its interface asynchronously
            while subprocess.run([*run, "ip", "link", "show", iface[side]], capture_output=True).returncode != 0:
                if daemon.poll() is not None:
                    pytest.fail(f"wireguard-go for {iface[side]} exited with {daemon.returncode} before making it")
                if time.monotonic() > deadline:
                    pytest.fail(f"wireguard-go made no {iface[side]} in {ns[side]} within 30 s")
                time.sleep(0.1)
            (tmp_path / f"{side}.key").write_text(keys[side] + "\n")
            peer = _sh("wg", "pubkey", stdin=keys[other]).strip()
            _sh(*run, "wg", "set", iface[side], "private-key", str(tmp_path / f"{side}.key"), "listen-port", "51820",
                "peer", peer, "allowed-ips", f"{over[other]}/32", "endpoint", f"{under[other]}:51820")
            _sh(*run, "ip", "addr", "add", f"{over[side]}/24", "dev", iface[side])
            _sh(*run, "ip", "link", "set", iface[side], "up")
        _sh("ip", "netns", "exec", ns["a"], "ping", "-c", "3", "-W", "2", over["b"])
        out = tmp_path / "textfile"
        # As the timer's service runs it: the installed script, its settings in the environment.
        result = subprocess.run(["ip", "netns", "exec", ns["a"], "env", f"VPN_IFACE={iface['a']}", f"TEXTFILE_DIR={out}",
                                 "bash", str(script_path("wg-metrics.sh"))], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        samples = {line.split("{")[0]: (line.split("{")[1].split("}")[0], int(line.rsplit(" ", 1)[1]))
                   for line in (out / "wireguard.prom").read_text().splitlines() if not line.startswith("#")}
        labels, handshake = samples["hybridai_wireguard_peer_last_handshake_seconds"]
        assert f'interface="{iface["a"]}"' in labels and f'allowed_ips="{over["b"]}/32"' in labels
        assert abs(handshake - time.time()) < 60
        assert samples["hybridai_wireguard_peer_transmit_bytes_total"][1] > 0
        assert samples["hybridai_wireguard_peer_receive_bytes_total"][1] > 0
    finally:
        stop_processes(daemons)
        for side in "ab":
            subprocess.run(["ip", "netns", "del", ns[side]], capture_output=True, timeout=30)
