"""A host outside the cluster on a site with snap files (a VPN hub): the mirror step holds its
snaps' auto-refreshes (lxd, core22, snapd: nothing refreshes against the store), and destroy
puts the hold back as it was; an snapd too old to hold forever fails the preflight, nothing
changed. Under the snap stand-in (tests/support/snap_files_stub.py, docs/upstream.md)."""

from __future__ import annotations

from pathlib import Path

from tests.support.snap_files_stub import SNAP_FILES_STUB
from tests.support.stubs import StubHost


def _host(tmp_path: Path) -> tuple[StubHost, dict[str, str]]:
    h = StubHost(tmp_path, {"snap": SNAP_FILES_STUB + "exit 1"}, {"PYTHON": "python3"})
    (tmp_path / "os-release").write_text("NAME=Ubuntu\nVERSION_CODENAME=jammy\n")
    return h, {"HOST_NAME": "vpn-hub", "SNAP_HOLD": "true", "OS_RELEASE": str(tmp_path / "os-release"), "HOLDS": str(tmp_path / "snap-holds"),
               "STAGED_SNAPS": str(tmp_path / "snaps"), "STAGED_CERTS_D": str(tmp_path / "certs.d"), "APT_DIR": str(tmp_path / "apt")}


def test_a_host_outside_the_cluster_holds_every_snap_and_destroy_lifts_it(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    result = h.run("mirrors.sh", **params)
    assert result.returncode == 0, result.stderr
    assert (h.state / "refresh-hold").read_text().strip() == "forever" and "snap refresh --hold" in h.calls()
    again = h.run("mirrors.sh", **params)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none", again.stdout + again.stderr
    teardown = h.run("mirrors-teardown.sh", **{k: params[k] for k in ("HOLDS", "STAGED_SNAPS", "STAGED_CERTS_D", "APT_DIR")})
    assert teardown.returncode == 0, teardown.stderr
    assert not (h.state / "refresh-hold").exists() and not Path(params["HOLDS"]).exists()


def test_destroy_puts_back_the_operators_own_hold(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    (h.state / "refresh-hold").write_text("2026-12-24T00:00:00Z\n")
    assert h.run("mirrors.sh", **params).returncode == 0
    assert (h.state / "refresh-hold").read_text().strip() == "forever"
    assert h.run("mirrors-teardown.sh", HOLDS=params["HOLDS"], STAGED_SNAPS=params["STAGED_SNAPS"],
                 STAGED_CERTS_D=params["STAGED_CERTS_D"], APT_DIR=params["APT_DIR"]).returncode == 0
    assert (h.state / "refresh-hold").read_text().strip() == "2026-12-24T00:00:00Z"


def test_an_snapd_that_cannot_hold_forever_fails_the_preflight_with_nothing_changed(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    (h.state / "snapd-version").write_text("2.55.5+22.04\n")  # Ubuntu 22.04 as released, never updated
    result = h.run("mirrors.sh", **params)
    assert result.returncode == 1
    assert "snapd 2.58 or later on this host, to hold its snaps' refreshes (it runs 2.55.5+22.04" in result.stderr, result.stderr
    assert not (h.state / "refresh-hold").exists() and not Path(params["HOLDS"]).exists()


def test_a_node_keeping_its_own_old_snapd_snap_fails_the_preflight_first(tmp_path: Path) -> None:
    """A node with the snapd snap installed keeps it (the carried one is not installed), so its
    version decides whether microk8s-install.sh can hold: checked before anything changes."""
    h, params = _host(tmp_path)
    (h.state / "snap-snapd").write_text("15000\n")
    (h.state / "snapd-version").write_text("2.54.3\n")
    result = h.run("mirrors.sh", **{**params, "SNAP_HOLD": "false", "SNAP_URL": "http://203.0.113.1/snaps", "SNAPS": "snapd_21759 core20_2379 microk8s_7394"})
    assert result.returncode == 1
    assert "Missing: snapd 2.58 or later on this host, to hold its snaps' refreshes (it runs 2.54.3" in result.stderr, result.stderr
    assert not Path(params["STAGED_SNAPS"]).exists() and not (h.state / "refresh-hold").exists()


def test_a_cluster_host_is_left_to_its_install_step(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    result = h.run("mirrors.sh", **{**params, "SNAP_HOLD": "false"})
    assert result.returncode == 0, result.stderr
    assert not [c for c in h.calls() if c.startswith("snap ")]
    teardown = h.run("mirrors-teardown.sh", **{k: params[k] for k in ("HOLDS", "STAGED_SNAPS", "STAGED_CERTS_D", "APT_DIR")})
    assert teardown.returncode == 0, teardown.stderr  # no hold recorded: nothing to put back
    assert not [c for c in h.calls() if c.startswith("snap ")]


def test_snapd_is_kept_off_the_store_and_destroy_puts_it_back_as_it_was(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    teardown = {k: params[k] for k in ("HOLDS", "STAGED_SNAPS", "STAGED_CERTS_D", "APT_DIR")}
    assert h.run("mirrors.sh", **params).returncode == 0
    assert (h.state / "store-access").read_text().strip() == "offline"
    assert h.run("mirrors.sh", **params).stdout.strip() == "changed=none"
    assert h.run("mirrors-teardown.sh", **teardown).returncode == 0
    assert not (h.state / "store-access").exists() and not Path(params["HOLDS"]).exists()
    # The operator's own offline setting stays after destroy.
    (h.state / "store-access").write_text("offline\n")
    assert h.run("mirrors.sh", **params).returncode == 0 and h.run("mirrors-teardown.sh", **teardown).returncode == 0
    assert (h.state / "store-access").read_text().strip() == "offline"


def test_a_host_outside_the_cluster_whose_site_drops_snap_files_gets_its_holds_back(tmp_path: Path) -> None:
    """The site keeps its mirrors but has no `snaps` now (SNAP_HOLD false): the mirror step, not
    only destroy, puts the system hold and store.access back, so the host can use the store again."""
    h, params = _host(tmp_path)
    (h.state / "refresh-hold").write_text("2026-12-24T00:00:00Z\n")
    assert h.run("mirrors.sh", **params).returncode == 0
    assert (h.state / "store-access").read_text().strip() == "offline"
    dropped = h.run("mirrors.sh", **{**params, "SNAP_HOLD": "false"})
    assert dropped.returncode == 0, dropped.stderr
    assert (h.state / "refresh-hold").read_text().strip() == "2026-12-24T00:00:00Z" and not (h.state / "store-access").exists()
    assert not Path(params["HOLDS"]).exists() and "store-access-restored" in dropped.stdout
    assert h.run("mirrors.sh", **{**params, "SNAP_HOLD": "false"}).stdout.strip() == "changed=none"


def test_a_nodes_holds_stay_for_its_install_step(tmp_path: Path) -> None:
    h, params = _host(tmp_path)
    (h.state / "refresh-hold").write_text("forever\n")
    (h.state / "store-access").write_text("offline\n")
    Path(params["HOLDS"]).write_text("system -\nmicrok8s unheld\nstore.access -\n")  # microk8s-install.sh's record
    result = h.run("mirrors.sh", **{**params, "SNAP_HOLD": "false"})
    assert result.returncode == 0 and result.stdout.strip() == "changed=none", result.stderr
    assert Path(params["HOLDS"]).exists() and (h.state / "store-access").read_text().strip() == "offline"
