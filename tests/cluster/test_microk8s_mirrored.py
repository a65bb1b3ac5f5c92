"""MicroK8s on a mirrored site, under the recording stubs: the snaps from the files the mirror
step staged (acked first, exact revision, refreshes held, never the store), the registries'
hosts.toml copied into containerd's certs.d, and a second run that changes nothing."""

from __future__ import annotations

from pathlib import Path

from tests.support.cluster_scripts import CP
from tests.support.cluster_stubs import ClusterHost

SNAPS = "core20_2379 microk8s_7394"


def _staged(tmp_path: Path) -> dict[str, str]:
    snaps, certs = tmp_path / "staged-snaps", tmp_path / "staged-certs.d"
    for name in SNAPS.split():
        (snaps).mkdir(exist_ok=True)
        (snaps / f"{name}.snap").write_bytes(b"stand-in snap " + name.encode())
        (snaps / f"{name}.assert").write_text(f"type: snap-revision\nsnap-revision: {name.rsplit('_', 1)[1]}\n")
    (certs / "ghcr.io").mkdir(parents=True)
    (certs / "ghcr.io" / "hosts.toml").write_text('# hybrid-ai: images of ghcr.io come from its mirror only\n'
                                                  'server = "https://203.0.113.1:5000/v2/ghcr.io"\noverride_path = true\n')
    return {**CP, "SNAP_FILES": SNAPS, "STAGED_SNAPS": str(snaps), "STAGED_CERTS_D": str(certs)}


def test_snaps_come_from_the_staged_files_acked_first_and_held(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    result = h.run("microk8s-install.sh", **params)
    assert result.returncode == 0, result.stderr
    snaps = params["STAGED_SNAPS"]
    assert [c for c in h.state_changes() if c.startswith("snap ")] == [
        f"snap ack {snaps}/core20_2379.assert", f"snap install {snaps}/core20_2379.snap", "snap refresh --hold core20",
        f"snap ack {snaps}/microk8s_7394.assert", f"snap install --classic {snaps}/microk8s_7394.snap", "snap refresh --hold microk8s",
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
    assert "registry-ghcr.io" in again.stdout
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
    assert "removed-registry-ghcr.io" in again.stdout
    assert not (h.snap_data / "args/certs.d/ghcr.io").exists() and own.read_text() == 'server = "https://quay.io"\n'


def test_another_revision_is_refused_naming_the_key(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    result = h.run("microk8s-install.sh", **{**params, "SNAP_FILES": "core20_2379 microk8s_7500"})
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
