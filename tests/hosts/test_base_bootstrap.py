"""base-bootstrap.sh under recording stubs: what it does, in order; a re-run does nothing."""

from __future__ import annotations

from pathlib import Path

from tests.support.stubs import StubHost

PACKAGES = "wireguard-tools iproute2"


def host(tmp_path: Path, br_netfilter_loaded: bool = True, stubs: dict[str, str] | None = None) -> tuple[StubHost, dict[str, str]]:
    """A host whose kernel state is ours, not the test machine's: br_netfilter is loaded when
    its sysctl file exists (the stub modprobe creates it, as loading the module does), and
    cloud-init ran this boot when its run folder exists (not here, unless a test makes it)."""
    bridge = tmp_path / "proc/sys/net/bridge/bridge-nf-call-iptables"
    modprobe = f'mkdir -p "{bridge.parent}"; echo 0 > "{bridge}"'
    h = StubHost(tmp_path, stubs={"modprobe": modprobe, **(stubs or {})})
    if br_netfilter_loaded:
        bridge.parent.mkdir(parents=True)
        bridge.write_text("0\n")
    params = {
        "HOST_NAME": "ws-1", "PACKAGES": PACKAGES,
        "SYSCTL_FILE": str(tmp_path / "etc/sysctl.d/90-hybrid-ai.conf"),
        "MODULES_FILE": str(tmp_path / "etc/modules-load.d/hybrid-ai.conf"),
        "BRIDGE_NF_SYSCTL": str(bridge),
        "CLOUD_INIT_RUN_DIR": str(tmp_path / "run/cloud-init"),
        "CLOUD_INIT_DONE": str(tmp_path / "var/lib/cloud/instance/boot-finished"),
    }
    return h, params


def test_fresh_host_is_set_up_in_order(tmp_path: Path) -> None:
    h, params = host(tmp_path)
    result = h.run("base-bootstrap.sh", **params)
    assert result.returncode == 0, result.stderr
    changes = h.state_changes()
    assert changes[:2] == [
        "apt-get -o DPkg::Lock::Timeout=120 update -q",
        "apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends wireguard-tools iproute2",
    ]
    assert "sysctl -q -w net.ipv4.ip_forward=1" in changes
    assert changes[-1] == "systemctl enable --now systemd-timesyncd"
    assert (tmp_path / "etc/sysctl.d/90-hybrid-ai.conf").read_text().startswith("net.ipv4.ip_forward=1\n")
    assert result.stdout.strip().startswith("changed=packages modules-file sysctl-file")


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    h, params = host(tmp_path)
    assert h.run("base-bootstrap.sh", **params).returncode == 0
    again = h.run("base-bootstrap.sh", **params)
    assert again.returncode == 0, again.stderr
    assert h.state_changes() == []
    assert again.stdout.strip() == "changed=none"


def test_br_netfilter_is_loaded_only_when_absent_and_once(tmp_path: Path) -> None:
    h, params = host(tmp_path, br_netfilter_loaded=False)
    first = h.run("base-bootstrap.sh", **params)
    assert first.returncode == 0, first.stderr
    assert "modprobe br_netfilter" in h.state_changes()
    assert "br_netfilter" in first.stdout.split("changed=", 1)[1].split()
    again = h.run("base-bootstrap.sh", **params)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none"


def test_a_module_that_cannot_load_stops_with_a_clear_message(tmp_path: Path) -> None:
    h, params = host(tmp_path, br_netfilter_loaded=False, stubs={"modprobe": "exit 1"})
    result = h.run("base-bootstrap.sh", **params)
    assert result.returncode != 0
    assert "cannot load br_netfilter" in result.stderr


def cloud_init_booting(tmp_path: Path, exit_code: int) -> tuple[StubHost, dict[str, str]]:
    """A host where cloud-init ran this boot and has not finished; its `status --wait` ends
    with `exit_code` (0 done, 1 error, 2 recoverable errors since cloud-init 23.4)."""
    h, params = host(tmp_path, stubs={"cloud-init": f"exit {exit_code}"})
    (tmp_path / "run/cloud-init").mkdir(parents=True)
    return h, params


def test_waits_for_cloud_init_only_while_it_is_still_running(tmp_path: Path) -> None:
    h, params = cloud_init_booting(tmp_path, 0)
    assert h.run("base-bootstrap.sh", **params).returncode == 0
    assert "cloud-init status --wait" in h.calls()
    done = Path(params["CLOUD_INIT_DONE"])
    done.parent.mkdir(parents=True)
    done.touch()
    assert h.run("base-bootstrap.sh", **params).returncode == 0
    assert not [c for c in h.calls() if c.startswith("cloud-init")]


def test_a_host_where_cloud_init_did_not_run_does_not_wait(tmp_path: Path) -> None:
    h, params = host(tmp_path, stubs={"cloud-init": "exit 0"})
    assert h.run("base-bootstrap.sh", **params).returncode == 0
    assert not [c for c in h.calls() if c.startswith("cloud-init")]


def test_cloud_init_with_recoverable_errors_goes_on_and_a_failed_one_stops(tmp_path: Path) -> None:
    h, params = cloud_init_booting(tmp_path / "recoverable", 2)
    assert h.run("base-bootstrap.sh", **params).returncode == 0
    h, params = cloud_init_booting(tmp_path / "failed", 1)
    failed = h.run("base-bootstrap.sh", **params)
    assert failed.returncode != 0
    assert "cloud-init did not finish cleanly (exit 1)" in failed.stderr
    assert not [c for c in h.calls() if c.startswith("apt-get")]


def test_apt_lock_is_retried_with_backoff(tmp_path: Path) -> None:
    h, params = host(tmp_path)
    (h.state / "apt-fail").write_text("2")
    result = h.run("base-bootstrap.sh", **params)
    assert result.returncode == 0, result.stderr
    assert [c for c in h.calls() if c.startswith("sleep")] == ["sleep 5", "sleep 10"]
    assert "attempt 1 failed" in result.stderr


def test_apt_failing_for_good_stops_with_a_clear_message(tmp_path: Path) -> None:
    h, params = host(tmp_path)
    (h.state / "apt-fail").write_text("always")
    result = h.run("base-bootstrap.sh", **params)
    assert result.returncode != 0
    assert [c for c in h.calls() if c.startswith("sleep")] == ["sleep 5", "sleep 10", "sleep 20", "sleep 40"]
    assert "hybrid-ai[ws-1] base: ERROR: apt-get update failed" in result.stderr


def test_probe_refuses_a_user_without_root(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs={"id": 'echo 1000'})
    result = h.run("host-probe.sh")
    assert result.returncode == 1
    assert "password-less sudo" in result.stderr


def test_probe_reports_facts(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs={"id": "echo 0", "apt-get": "exit 0"})
    result = h.run("host-probe.sh")
    assert result.returncode == 0, result.stderr
    facts = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(facts) == {"os", "os_version", "arch", "cpus", "memory_mb"}
    assert int(facts["cpus"]) >= 1
