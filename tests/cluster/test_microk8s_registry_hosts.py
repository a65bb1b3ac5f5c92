"""MicroK8s' containerd registry configuration on a mirrored site, under the recording stubs: in
place right after the snap install, before anything else; docker.io's own default back when our
mirror of it goes; and a node installed from files, whose site no longer has snap files, told
what to do."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.test_microk8s_mirrored import _staged
from tests.support.cluster_stubs import ClusterHost


def _watch_snap(h: ClusterHost) -> Path:
    """Wrap the snap stub: each call is recorded with whether ghcr.io's mirror was in containerd's certs.d then."""
    real = h.bin / "snap.real"
    (h.bin / "snap").rename(real)
    (h.bin / "snap").write_text(f'#!/usr/bin/env bash\n[ -e "$SNAP_DATA/args/certs.d/ghcr.io/hosts.toml" ] && seen=mirror || seen=upstream\n'
                                f'echo "$* -> $seen" >> "$STATE/snap-seen"\nexec {real} "$@"\n')
    (h.bin / "snap").chmod(0o755)
    return h.state / "snap-seen"


def test_the_mirrors_hosts_toml_is_in_containerds_certs_d_right_after_the_install(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    seen = _watch_snap(h)
    result = h.run("microk8s-install.sh", **_staged(tmp_path))
    assert result.returncode == 0, result.stderr
    calls = seen.read_text().splitlines()
    installed = next(i for i, c in enumerate(calls) if c.startswith("install --classic") and "microk8s_" in c)
    # containerd runs from the install on: every snap call after it but reading the revision installed
    # (the holds first) already finds the mirror.
    after = [c for c in calls[installed + 1:] if not c.startswith("list microk8s")]
    assert any(c.startswith("refresh --hold") for c in after) and all(c.endswith("-> mirror") for c in after), calls


def test_docker_io_gets_microk8s_own_default_back_when_its_mirror_goes(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    ours = Path(params["STAGED_CERTS_D"]) / "docker.io"
    ours.mkdir()
    (ours / "hosts.toml").write_text('# hybrid-ai: images of docker.io come from its mirror only\nserver = "https://203.0.113.1:5000/v2/docker.io"\n')
    (ours / "ca.crt").write_text("stand-in CA\n")
    assert h.run("microk8s-install.sh", **params).returncode == 0
    certs = h.snap_data / "args/certs.d"
    assert (certs / "docker.io/hosts.toml").read_text() == (ours / "hosts.toml").read_text()
    assert (certs / "docker.io/ca.crt").exists()
    (ours / "hosts.toml").unlink()
    (ours / "ca.crt").unlink()
    ours.rmdir()
    again = h.run("microk8s-install.sh", **params)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (certs / "docker.io").iterdir()) == ["hosts.toml"]
    assert (certs / "docker.io/hosts.toml").read_text() == (h.microk8s_defaults / "docker.io/hosts.toml").read_text()
    assert "containerd-registry-removed-docker.io" in again.stdout
    assert h.run("microk8s-install.sh", **params).stdout.strip() == "changed=none"


def test_a_node_installed_from_files_whose_site_has_no_snap_files_now_is_told_the_real_fix(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    result = h.run("microk8s-install.sh", **{**params, "SNAP_FILES": ""})
    assert result.returncode == 1
    assert "fromChannel" not in result.stderr
    assert "installed from the site's snap files" in result.stderr and "put mirrors.snaps back" in result.stderr
    assert "snap refresh microk8s --channel=1.32/stable" in result.stderr, result.stderr
    # The node's own install step kept snapd off the store and held it: the way back says so.
    assert "snap unset system store.access" in result.stderr and "snap refresh --unhold microk8s" in result.stderr


def test_the_operators_own_folder_for_a_mirrored_registry_comes_back_when_the_mirror_goes(tmp_path: Path) -> None:
    h = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    params = _staged(tmp_path)
    assert h.run("microk8s-install.sh", **params).returncode == 0
    certs = h.snap_data / "args/certs.d"
    own = {"hosts.toml": b'server = "https://ghcr.io"\n\n[host."https://cache.corp.example"]\n  capabilities = ["pull"]\n',
           "client.cert": b"operator's client certificate\n"}
    ours = Path(params["STAGED_CERTS_D"]) / "ghcr.io"
    staged = {p.name: p.read_bytes() for p in ours.iterdir()}
    for name, data in own.items():  # the operator's folder, written before ghcr.io was mirrored
        (certs / "ghcr.io" / name).write_bytes(data)
    (certs / "ghcr.io/ca.crt").unlink(missing_ok=True)
    (certs / "ghcr.io/hosts.toml").write_bytes(own["hosts.toml"])
    mirrored = h.run("microk8s-install.sh", **params)
    assert mirrored.returncode == 0, mirrored.stderr
    assert {p.name: p.read_bytes() for p in (certs / "ghcr.io").iterdir()} == staged
    for p in list(ours.iterdir()):
        p.unlink()
    ours.rmdir()
    removed = h.run("microk8s-install.sh", **params)
    assert removed.returncode == 0, removed.stderr
    assert {p.name: p.read_bytes() for p in (certs / "ghcr.io").iterdir()} == own
    assert not [p for p in certs.iterdir() if p.name.startswith(".")]  # no folder left half-built
    assert h.run("microk8s-install.sh", **params).stdout.strip() == "changed=none"
