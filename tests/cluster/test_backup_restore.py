"""Restore against a hostile backup store: real gzip tar archives, the real datastore-restore.sh
and datastore-backup.sh, and a microk8s stand-in whose `dbctl restore` extracts as MicroK8s 1.32's
does (Python tarfile, a check of member names only, then `extractall`; docs/upstream.md). A
snapshot that could write outside its folder is refused before anything is written, and one the
store changed is caught by the digest the control plane recorded when it took the snapshot."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.cluster.test_backup import MICROK8S, S3CMD, SSH
from tests.support.stubs import StubHost

NAME = "backup-20260101T023000Z"
# `microk8s dbctl restore FILE` as at 1.32 (scripts/wrappers/dbctl.py, common/utils.py safe_extract):
# a temporary directory, each member's *name* checked to lie inside it, then tar.extractall on
# the snap's Python 3.8 (no extraction filter), so a symlink member is created and followed.
DBCTL_RESTORE = f"""
case "$1 $2" in
  "dbctl restore") {sys.executable} - "$3" <<'PY'
import os, sys, tarfile, tempfile
d = os.path.abspath(tempfile.mkdtemp())
with tarfile.open(sys.argv[1], "r:gz") as tar:
    for m in tar.getmembers():
        if os.path.commonprefix([d, os.path.abspath(os.path.join(d, m.name))]) != d:
            sys.exit("Attempted Path Traversal in Tar File")
    tar.extractall(d, **({{"filter": "fully_trusted"}} if hasattr(tarfile, "fully_trusted_filter") else {{}}))
PY
  cp "$3" "$STATE/restored.tar.gz";;
  "status --wait-ready") true;;
esac"""


def archive(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info


def good() -> list[tarfile.TarInfo | tuple[str, bytes]]:
    return [special(NAME, tarfile.DIRTYPE), (f"{NAME}/0.key", b"/registry/ns/default"), (f"{NAME}/0.data", b"v")]


def restorer(tmp_path: Path) -> StubHost:
    return StubHost(tmp_path, stubs={"microk8s": DBCTL_RESTORE})


def restore(h: StubHost, tmp_path: Path, data: bytes, **params: str) -> tuple[int, str]:
    file = tmp_path / f"{NAME}.tar.gz"
    file.write_bytes(data)
    digests = tmp_path / "digests"
    if not digests.exists():  # the control plane recorded it when it took the snapshot
        digests.write_text(f"{hashlib.sha256(data).hexdigest()}  {NAME}.tar.gz\n")
    result = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_DIGESTS=str(digests), **params)
    return result.returncode, result.stderr


def hostile(outside: Path) -> dict[str, list[tarfile.TarInfo | tuple[str, bytes]]]:
    victim = outside / "victim"
    return {
        "symlink to a directory outside, then a file through it": [
            *good(), special(f"{NAME}/link", tarfile.SYMTYPE, str(outside)), (f"{NAME}/link/written", b"pwned")],
        "symlink named like a datastore key": [
            special(NAME, tarfile.DIRTYPE), special(f"{NAME}/0.key", tarfile.SYMTYPE, str(victim)), (f"{NAME}/0.data", b"v")],
        "hard link to a file outside, then written through": [
            *good(), special(f"{NAME}/1.key", tarfile.LNKTYPE, str(victim)), (f"{NAME}/1.key", b"pwned")],
        "character device": [*good(), special(f"{NAME}/1.key", tarfile.CHRTYPE)],
        "fifo": [*good(), special(f"{NAME}/1.key", tarfile.FIFOTYPE)],
        "dot-dot entry": [*good(), (f"{NAME}/../{NAME}/1.key", b"x")],
        "dot-dot out of the folder": [*good(), (f"{NAME}/../../written", b"pwned")],
        "absolute path": [*good(), (str(outside / "written"), b"pwned")],
        "a name dbctl never writes": [*good(), (f"{NAME}/.bashrc", b"pwned")],
    }


@pytest.mark.parametrize("case", list(hostile(Path("/x"))))
def test_a_snapshot_that_could_write_outside_its_folder_is_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    h = restorer(tmp_path)
    rc, stderr = restore(h, tmp_path, archive(hostile(outside)[case]))
    assert rc == 1 and "refusing it" in stderr, f"{case}: exit {rc}\n{stderr}"
    assert h.calls() == [], case  # microk8s never ran
    assert sorted(p.name for p in outside.iterdir()) == ["victim"] and (outside / "victim").read_text() == "untouched"


def test_the_stand_in_writes_outside_as_dbctl_does_when_handed_such_a_snapshot(tmp_path: Path) -> None:
    """What the refusal prevents: dbctl 1.32's own name check lets the symlink through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    data = archive(hostile(outside)["symlink to a directory outside, then a file through it"])
    (tmp_path / "s.tar.gz").write_bytes(data)
    h = restorer(tmp_path)
    subprocess.run(["bash", str(h.bin / "microk8s"), "dbctl", "restore", str(tmp_path / "s.tar.gz")],
                   env={"STATE": str(h.state), "PATH": "/usr/bin:/bin"}, check=True, capture_output=True)
    assert (outside / "written").read_text() == "pwned"


def test_a_good_snapshot_is_restored(tmp_path: Path) -> None:
    h = restorer(tmp_path)
    data = archive(good())
    rc, stderr = restore(h, tmp_path, data)
    assert rc == 0, stderr
    assert (h.state / "restored.tar.gz").read_bytes() == data


def test_a_snapshot_the_store_changed_is_caught_by_the_digest_recorded_at_backup_time(tmp_path: Path) -> None:
    h = restorer(tmp_path)
    recorded = archive(good())
    (tmp_path / "digests").write_text(f"{hashlib.sha256(recorded).hexdigest()}  {NAME}.tar.gz\n")
    changed = archive([special(NAME, tarfile.DIRTYPE), (f"{NAME}/0.key", b"/registry/ns/default"), (f"{NAME}/0.data", b"w")])
    rc, stderr = restore(h, tmp_path, changed)
    assert rc == 1 and "not one the control plane recorded" in stderr and h.calls() == []
    rc, stderr = restore(h, tmp_path, recorded)
    assert rc == 0, stderr


def test_on_a_new_control_plane_the_digest_is_given_by_hand(tmp_path: Path) -> None:
    h = restorer(tmp_path)
    data = archive(good())
    (tmp_path / "digests").unlink(missing_ok=True)
    file = tmp_path / f"{NAME}.tar.gz"
    file.write_bytes(data)
    missing = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_DIGESTS=str(tmp_path / "none"))
    assert missing.returncode == 1 and "BACKUP_SHA256" in missing.stderr and h.calls() == []
    wrong = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_DIGESTS=str(tmp_path / "none"), BACKUP_SHA256="0" * 64)
    assert wrong.returncode == 1 and h.calls() == []
    right = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_DIGESTS=str(tmp_path / "none"),
                  BACKUP_SHA256=hashlib.sha256(data).hexdigest())
    assert right.returncode == 0, right.stderr


def test_the_backup_records_the_digest_under_the_stores_name(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S, "ssh": SSH, "s3cmd": S3CMD})
    digests = tmp_path / "digests"
    for _ in range(2):
        result = h.run("datastore-backup.sh", BACKUP_WORK_DIR=str(tmp_path / "work"), BACKUP_TARGET="hybridai-backup@100.64.0.1",
                       TEXTFILE_DIR=str(tmp_path / "textfile"), BACKUP_DIGESTS=str(digests))
        assert result.returncode == 0, result.stderr
    sent = hashlib.sha256((h.state / "received").read_bytes()).hexdigest()
    lines = digests.read_text().splitlines()
    assert len(lines) == 2 and lines[-1] == f"{sent}  backup-20260101T000000Z.tar.gz"  # the name the store confirmed
    assert digests.stat().st_mode & 0o777 == 0o600
