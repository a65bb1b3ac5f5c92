"""The backup store (the backup host): its forced command under a clock the test sets, and its
user's install and destroy under stubs that keep accounts as shadow's tools do."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from components.kit.shell import compose
from tests.support.stubs import StubHost

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43


# --- The store's forced command --------------------------------------------------------------

def snapshot(name: str, entries: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in (entries or {f"{name}/0.key": b"/registry/ns/default", f"{name}/0.data": b"v"}).items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# `date` on the store host, its clock set by the test ($STATE/now: epoch seconds).
DATE = """if [ "${1:-}" = -u ] && [ "${2:-}" = +%s ]; then cat "$STATE/now"; else exec /usr/bin/date "$@"; fi"""


def receive(store: Path, name: str, data: bytes, keep: int = 3, now: int = 1767225600, min_interval: int = 600) -> subprocess.CompletedProcess[bytes]:
    """One upload, the store's clock at `now` (default 2026-01-01T00:00:00Z)."""
    store.mkdir(exist_ok=True)
    bin_ = store.parent / "store-bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / "date").write_text(f"#!/bin/bash\nSTATE={bin_}\n{DATE}\n")
    (bin_ / "date").chmod(0o755)
    (bin_ / "now").write_text(f"{now}\n")
    text = compose("backup-receive.sh", {"BACKUP_STORE_DIR": str(store), "BACKUP_KEEP": str(keep), "BACKUP_MAX_BYTES": "100000",
                                         "BACKUP_MIN_INTERVAL_S": str(min_interval)})
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "SSH_ORIGINAL_COMMAND": name}
    return subprocess.run(["bash", "-c", text, "backup-receive"], input=data, env=env, capture_output=True, timeout=30)


DAY = 86400


def test_store_names_by_its_own_clock_keeps_the_newest_and_refuses_anything_else(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for d in range(1, 6):
        result = receive(store, "whatever the client says", snapshot("backup-x"), now=1767225600 + d * DAY)
        assert result.returncode == 0 and result.stdout == f"stored backup-2026010{d + 1}T000000Z.tar.gz\n".encode()
    assert sorted(p.name for p in store.iterdir()) == [f"backup-2026010{d}T000000Z.tar.gz" for d in (4, 5, 6)]
    for name, data in [("backup-20260110T023000Z.tar.gz", b"not a tar"),
                       ("backup-20260111T023000Z.tar.gz", b"\x1f\x8b" + b"0" * 200_000)]:
        result = receive(store, name, data, now=1767225600 + 10 * DAY)
        assert result.returncode == 1 and b"refusing" in result.stderr, name
    assert sorted(p.name for p in store.iterdir()) == [f"backup-2026010{d}T000000Z.tar.gz" for d in (4, 5, 6)]


def test_a_hostile_client_cannot_replace_or_push_out_stored_snapshots(tmp_path: Path) -> None:
    """Review 4 #2: future-dated names, re-sent names and a flood change no stored snapshot."""
    store = tmp_path / "store"
    now = 1767225600
    for d in range(3):
        assert receive(store, "x", snapshot(f"real-{d}"), now=now + d * DAY).returncode == 0
    real = {p.name: p.read_bytes() for p in store.iterdir()}
    later = now + 2 * DAY
    for i, name in enumerate(["backup-99991231T235959Z.tar.gz", *real, *real]):  # future names, then existing ones
        result = receive(store, name, snapshot("crafted"), now=later + i)
        assert result.returncode == 1 and b"refusing" in result.stderr, name
    assert {p.name: p.read_bytes() for p in store.iterdir()} == real
    # Once the interval passed an upload is stored, under the store's time, and prunes only the oldest.
    assert receive(store, "backup-99991231T235959Z.tar.gz", snapshot("next"), now=later + 700).returncode == 0
    assert sorted(p.name for p in store.iterdir()) == [*sorted(real)[1:], "backup-20260103T001140Z.tar.gz"]
    # The clock standing still (same second, no interval): the existing file is never replaced.
    kept = (store / "backup-20260103T001140Z.tar.gz").read_bytes()
    same = receive(store, "x", snapshot("again"), now=later + 700, min_interval=0)
    assert same.returncode == 1 and b"exists already" in same.stderr
    assert (store / "backup-20260103T001140Z.tar.gz").read_bytes() == kept


# Accounts as shadow's tools keep them: $STATE/user/<name> exists once added, holds L once locked.
ACCOUNTS = {
    "id": '[ -e "$STATE/user/${!#}" ]',
    "useradd": 'mkdir -p "$STATE/user"; echo P > "$STATE/user/${!#}"',
    "usermod": '[ "$1" = --lock ] && echo L > "$STATE/user/${!#}"',
    "passwd": 'echo "${!#} $(cat "$STATE/user/${!#}") 2026-01-01 0 99999 7 -1"',
    "userdel": 'rm "$STATE/user/${!#}"',
    "chown": "exit 0",
}


def test_store_install_authorises_only_the_forced_command_from_the_control_plane(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs=ACCOUNTS)
    store = tmp_path / "store"
    params = {"BACKUP_RECEIVER": "#!/bin/bash", "BACKUP_PUBLIC_KEY": PUBLIC, "BACKUP_FROM": "100.64.0.2", "BACKUP_STORE_DIR": str(store),
              "BACKUP_RECEIVER_PATH": str(tmp_path / "lib" / "backup-receive")}
    bad = h.run("backup-receiver-install.sh", **{**params, "BACKUP_PUBLIC_KEY": PUBLIC + '\ncommand="sh"'})
    assert bad.returncode == 1 and "no ed25519 public key" in bad.stderr
    assert not (store / ".ssh" / "authorized_keys").exists()
    good = h.run("backup-receiver-install.sh", **params)
    assert good.returncode == 0, good.stderr
    assert (store / ".ssh" / "authorized_keys").read_text() == (
        f'restrict,from="100.64.0.2",command="{tmp_path}/lib/backup-receive" {PUBLIC}\n'
    )
    assert (tmp_path / "lib" / "backup-receive").read_text().startswith("#!/usr/bin/env bash\n")
    assert (h.state / "user" / "hybridai-backup").read_text() == "L\n"  # password locked; only the key logs in
    assert h.run("backup-receiver-install.sh", **params).stdout.strip() == "changed=none"


def test_store_destroy_removes_the_user_and_keeps_the_snapshots_for_root_only(tmp_path: Path) -> None:
    """Review 4 #4: the account goes; the snapshots stay, owned by root (no later user with the freed UID reads them)."""
    h = StubHost(tmp_path, stubs=ACCOUNTS)
    store = tmp_path / "store"
    params = {"BACKUP_RECEIVER": "#!/bin/bash", "BACKUP_PUBLIC_KEY": PUBLIC, "BACKUP_FROM": "100.64.0.2", "BACKUP_STORE_DIR": str(store),
              "BACKUP_RECEIVER_PATH": str(tmp_path / "lib" / "backup-receive")}
    assert h.run("backup-receiver-install.sh", **params).returncode == 0
    (store / "backup-20260101T000000Z.tar.gz").write_bytes(b"snap")
    for _ in range(2):  # idempotent
        gone = h.run("backup-receiver-remove.sh", BACKUP_STORE_DIR=str(store))
        assert gone.returncode == 0, gone.stderr
    assert not (h.state / "user" / "hybridai-backup").exists() and not (store / ".ssh" / "authorized_keys").exists()
    assert (store / "backup-20260101T000000Z.tar.gz").read_bytes() == b"snap"
    assert f"chown -R root:root {store}" in h.calls()
