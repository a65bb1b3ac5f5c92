"""MicroK8s on a mirrored site, under the recording stubs: the snaps from the files the mirror
step staged (snapd and the base first where missing, acked first, the exact revision or nothing,
refreshes held and put back on destroy, never the store), the registries' hosts.toml copied into
containerd's certs.d, and a second run that changes nothing."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from stacks.load import validate
from stacks.mirrors import snap_files
from tests.support.cluster_scripts import CP
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import stack_config

SNAPS = snap_files(validate(stack_config("airgap")).mirrors)
"""What the program hands the install step of the airgap example's nodes: snapd_21759 core20_2379 microk8s_7394."""


def _assertion(data: bytes, revision: str) -> str:
    """A stand-in snap-revision assertion: the file's digest as snapd writes it (base64url sha3-384)."""
    digest = base64.urlsafe_b64encode(hashlib.sha3_384(data).digest()).rstrip(b"=").decode()
    return f"type: snap-revision\nsnap-sha3-384: {digest}\nsnap-revision: {revision}\n\n"


def _staged(tmp_path: Path) -> dict[str, str]:
    snaps, certs = tmp_path / "staged-snaps", tmp_path / "staged-certs.d"
    for name in SNAPS.split():
        (snaps).mkdir(exist_ok=True)
        data = b"stand-in snap " + name.encode()
        (snaps / f"{name}.snap").write_bytes(data)
        (snaps / f"{name}.assert").write_text(_assertion(data, name.rsplit("_", 1)[1]))
    (certs / "ghcr.io").mkdir(parents=True)
    (certs / "ghcr.io" / "hosts.toml").write_text('# hybrid-ai: images of ghcr.io come from its mirror only\n'
                                                  'server = "https://203.0.113.1:5000/v2/ghcr.io"\noverride_path = true\n')
    return {**CP, "SNAP_FILES": SNAPS, "STAGED_SNAPS": str(snaps), "STAGED_CERTS_D": str(certs), "HOLDS": str(tmp_path / "snap-holds")}


def _preinstalled(h: ClusterHost, name: str, revision: str, held: bool = False) -> None:
    """A snap the host's image came with (the stub's state)."""
    (h.state / f"snap-{name}").write_text(revision + "\n")
    if held:
        (h.state / f"held-{name}").write_text("")


def test_a_host_without_the_snapd_snap_gets_it_from_the_files_before_the_base_and_never_the_store(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    snaps = params["STAGED_SNAPS"]
    installs = [c for c in h.state_changes() if c.startswith(("snap ack", "snap install"))]
    assert installs == [f"snap ack {snaps}/snapd_21759.assert", f"snap install {snaps}/snapd_21759.snap",
                        f"snap ack {snaps}/core20_2379.assert", f"snap install {snaps}/core20_2379.snap",
                        f"snap ack {snaps}/microk8s_7394.assert", f"snap install --classic {snaps}/microk8s_7394.snap"]
    # No snap call that could reach the store: every install names a staged file, nothing a channel.
    assert all(c.split()[-1].startswith(snaps) for c in h.calls() if c.startswith("snap install"))
    assert not [c for c in h.calls() if "--channel" in c or c.split()[:2] == ["snap", "download"]]
    assert (h.state / "snap-snapd").read_text().strip() == "21759" and (h.state / "snap-core20").read_text().strip() == "2379"


def test_a_file_of_another_revision_is_removed_again_and_fails_naming_both(tmp_path: Path) -> None:
    """The plain-HTTP mirror (or the LAN) serves an older, validly signed revision under the pinned
    name, with that revision's assertion beside the pinned one's: snapd installs what the file is."""
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    staged = Path(params["STAGED_SNAPS"])
    older = b"stand-in snap microk8s_7000"
    (staged / "microk8s_7394.snap").write_bytes(older)
    (staged / "microk8s_7394.assert").write_text((staged / "microk8s_7394.assert").read_text() + _assertion(older, "7000"))
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 1
    assert "installed revision 7000 of microk8s, not the pinned 7394 (mirrors.snaps.microk8sRevision)" in result.stderr, result.stderr
    assert not (h.state / "snap-channel").exists()  # MicroK8s is gone again ...
    assert not (h.state / "snap-core20").exists() and not (h.state / "snap-snapd").exists()  # ... and what this run installed
    assert not [c for c in h.calls() if c.startswith("snap refresh --hold")]  # nothing held


def test_every_snap_is_held_a_preinstalled_base_too_and_destroy_puts_the_holds_back(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    _preinstalled(h, "snapd", "21000", held=True)  # held by the operator before: stays held
    _preinstalled(h, "core20", "2015")             # preinstalled, not held: held now, unheld on destroy
    (h.state / "refresh-hold").write_text("2026-12-24T00:00:00Z\n")  # the operator's own auto-refresh hold
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    assert [c for c in h.calls() if c.startswith("snap install")] == [f"snap install --classic {params['STAGED_SNAPS']}/microk8s_7394.snap"]
    assert (h.state / "refresh-hold").read_text().strip() == "forever"  # auto-refreshes of every snap, lxd's too
    assert all((h.state / f"held-{s}").exists() for s in ("snapd", "core20", "microk8s"))
    again = h.run("microk8s-install.sh", **params)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none", again.stdout + again.stderr
    destroy = h.run("microk8s-uninstall.sh", HOLDS=params["HOLDS"])
    assert destroy.returncode == 0, destroy.stderr
    assert (h.state / "refresh-hold").read_text().strip() == "2026-12-24T00:00:00Z"
    assert (h.state / "held-snapd").exists() and not (h.state / "held-core20").exists()
    assert (h.state / "snap-core20").exists()  # kept: other snaps may use it


def test_destroy_unholds_the_snaps_it_installed_and_lifts_the_hold_it_set(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    assert (h.state / "held-core20").exists() and (h.state / "held-snapd").exists()
    destroy = h.run("microk8s-uninstall.sh", HOLDS=params["HOLDS"])
    assert destroy.returncode == 0, destroy.stderr
    assert not list(h.state.glob("held-*")) and not (h.state / "refresh-hold").exists()
    assert not Path(params["HOLDS"]).exists()


def test_snaps_come_from_the_staged_files_acked_first_and_held(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    snaps = params["STAGED_SNAPS"]
    assert [c for c in h.state_changes() if c.startswith("snap ")] == [
        f"snap ack {snaps}/snapd_21759.assert", f"snap install {snaps}/snapd_21759.snap",
        f"snap ack {snaps}/core20_2379.assert", f"snap install {snaps}/core20_2379.snap",
        f"snap ack {snaps}/microk8s_7394.assert", f"snap install --classic {snaps}/microk8s_7394.snap",
        "snap refresh --hold", "snap refresh --hold snapd", "snap refresh --hold core20", "snap refresh --hold microk8s",
        "snap set system store.access=offline",
    ]
    assert not [c for c in h.calls() if "--channel" in c]
    assert (h.snap_data / "args/certs.d/ghcr.io/hosts.toml").read_text().startswith('# hybrid-ai: images of ghcr.io')
    again = h.run("microk8s-install.sh", **params)
    assert again.returncode == 0, again.stderr
    assert h.state_changes() == [] and again.stdout.strip() == "changed=none"


def test_a_changed_registry_mirror_is_copied_again(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    (Path(params["STAGED_CERTS_D"]) / "ghcr.io" / "hosts.toml").write_text('server = "https://203.0.113.9:5000"\n')
    again = h.run("microk8s-install.sh", **params)
    assert "containerd-registry-ghcr.io" in again.stdout
    assert (h.snap_data / "args/certs.d/ghcr.io/hosts.toml").read_text() == 'server = "https://203.0.113.9:5000"\n'


def test_a_registry_no_longer_mirrored_is_removed_and_microk8s_own_files_stay(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    own = h.snap_data / "args/certs.d/quay.io/hosts.toml"  # one not ours (MicroK8s' or the operator's)
    own.parent.mkdir(parents=True)
    own.write_text('server = "https://quay.io"\n')
    for f in (Path(params["STAGED_CERTS_D"]) / "ghcr.io").iterdir():
        f.unlink()
    (Path(params["STAGED_CERTS_D"]) / "ghcr.io").rmdir()  # what mirrors.sh does once ghcr.io is out of the config
    again = h.run("microk8s-install.sh", **params)
    assert again.returncode == 0, again.stderr
    assert "containerd-registry-removed-ghcr.io" in again.stdout
    assert not (h.snap_data / "args/certs.d/ghcr.io").exists() and own.read_text() == 'server = "https://quay.io"\n'
    # MicroK8s' own defaults (its install hook's copy of default-args/certs.d) stay as they were.
    for name in ("docker.io", "localhost__32000"):
        local = name.replace("__", ":")
        assert (h.snap_data / "args/certs.d" / local / "hosts.toml").read_text() == (h.microk8s_defaults / name / "hosts.toml").read_text()


def test_another_revision_is_refused_naming_the_key(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    result = h.run("microk8s-install.sh", **{**params, "SNAP_FILES": "snapd_21759 core20_2379 microk8s_7500"})
    assert result.returncode == 1
    assert "runs revision 7394 here, mirrors.snaps.microk8sRevision is 7500" in result.stderr


def test_a_missing_assertion_fails_before_microk8s_is_installed(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    (Path(params["STAGED_SNAPS"]) / "microk8s_7394.assert").unlink()
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 1
    assert f"snap ack {params['STAGED_SNAPS']}/microk8s_7394.assert failed" in result.stderr
    assert not [c for c in h.calls() if "microk8s_7394.snap" in c]


def test_snapd_is_kept_off_the_store_and_destroy_puts_store_access_back(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    assert (h.state / "store-access").read_text().strip() == "offline" and "snap set system store.access=offline" in h.calls()
    again = h.run("microk8s-install.sh", **params)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none", again.stdout + again.stderr
    destroy = h.run("microk8s-uninstall.sh", HOLDS=params["HOLDS"])
    assert destroy.returncode == 0, destroy.stderr
    assert not (h.state / "store-access").exists() and "snap unset system store.access" in h.calls()


def test_an_snapd_without_store_access_is_left_as_it_is_and_logged(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    (h.state / "snapd-version").write_text("2.60.4\n")  # before 2.61: snapd refuses the option
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    assert "snapd 2.60.4 has no store.access" in result.stderr
    assert not (h.state / "store-access").exists() and "store.access" not in Path(params["HOLDS"]).read_text()
