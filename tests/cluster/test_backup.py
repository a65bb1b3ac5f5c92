"""Datastore backups (issue 15 item 4): the plan, the config rules, and every host script under
recording stubs (snapshot, copy, upload, metric, the store's forced command, restore)."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from components.cluster.backup import backup_public_key
from components.kit.shell import split_command
from components.vpn.wireguard_check import HostOutputError
from stacks.load import ConfigError
from tests.cluster.test_backup_store import snapshot
from tests.support.helpers import evaluate_config, stack_config
from tests.support.stubs import StubHost
from tools.render.write import reveal

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43
CREDENTIALS = "AKIAEXAMPLE:s3cr3t-Value/xyz"
METRIC = "hybridai_datastore_backup_last_success_timestamp_seconds"

# microk8s as dbctl behaves at 1.32: `backup -o NAME` writes NAME.tar.gz holding one directory
# NAME/ (a pair <i>.key, <i>.data per datastore key); `restore FILE` reads it; `status --wait-ready` waits.
MICROK8S = """
case "$1 $2" in
  "dbctl backup") d=$(mktemp -d); n=$(basename "$4"); mkdir "$d/$n"; printf /registry/ns/default > "$d/$n/0.key"; echo v > "$d/$n/0.data"
                  [ -e "$STATE/dbctl-fail" ] && exit 1; tar -czf "$4.tar.gz" -C "$d" "$n";;
  "dbctl restore") cp "$3" "$STATE/restored.tar.gz";;
  "status --wait-ready") [ ! -e "$STATE/down" ];;
esac"""
# ssh as the store's forced command answers: `stored <its own name>` once stored (ssh-silent:
# exits 0 without confirming, as a store that stored nothing could).
SSH = """cat > "$STATE/received"; printf '%s\\n' "$@" > "$STATE/ssh-args"; [ ! -e "$STATE/ssh-fail" ] || exit 1
[ -e "$STATE/ssh-silent" ] || echo stored backup-20260101T000000Z.tar.gz"""
S3CMD = """printf '%s\\n' "$@" > "$STATE/s3cmd-args"; exit 0"""


def sha256(file: Path) -> str:
    """The digest the control plane recorded when it took the snapshot."""
    return hashlib.sha256(file.read_bytes()).hexdigest()


def backup_config(**backup: Any) -> dict[str, Any]:
    raw = stack_config("dev")
    raw["backup"] = {"enabled": True, "host": "vpn-hub", **backup}
    return raw


# --- Plan ------------------------------------------------------------------------------

def test_backups_are_off_by_default_and_add_nothing() -> None:
    ev = evaluate_config(stack_config("dev"))
    assert not [r for r in ev.resources if r.name.startswith("datastore-backup")]


def test_enabled_backup_schedules_on_the_control_plane_and_authorises_its_key_on_the_store() -> None:
    raw = backup_config(keep=5, objectStorage={"url": "https://s3.example.org/hybrid-backups"})
    secrets = {"sshPrivateKey": "test-key", "backupObjectStorageCredentials": CREDENTIALS}
    ev = evaluate_config(raw, secrets, command_stdout={"datastore-backup-schedule": f"changed=none\n{PUBLIC}\n"})
    schedule, store = ev.by_name("datastore-backup-schedule"), ev.by_name("datastore-backup-store")
    assert reveal(schedule.inputs["connection"])["host"] == reveal(ev.by_name("cluster-kubeconfig").inputs["connection"])["host"]
    _, params = split_command(schedule.inputs["create"])
    assert params["BACKUP_S3"] == "yes" and params["BACKUP_SCHEDULE"] == "*-*-* 02:30:00"
    runner = params["BACKUP_RUNNER"]
    assert "BACKUP_TARGET=hybridai-backup@" in runner and "BACKUP_S3_URL=https://s3.example.org/hybrid-backups" in runner
    assert reveal(schedule.inputs["stdin"]) == CREDENTIALS  # on stdin, a secret ...
    for r in ev.resources:  # ... and in no command line
        assert CREDENTIALS not in str(r.inputs.get("create", "")) and CREDENTIALS not in str(r.inputs.get("delete", ""))
    _, store_params = split_command(store.inputs["create"])
    assert store_params["BACKUP_PUBLIC_KEY"] == PUBLIC and "BACKUP_KEEP=5" in store_params["BACKUP_RECEIVER"]
    by_urn = {r.urn: r for r in ev.resources}
    assert "datastore-backup-schedule" in {by_urn[d].name for d in store.dependencies}


def test_a_schedule_step_that_prints_no_key_fails_naming_it() -> None:
    with pytest.raises(HostOutputError, match="datastore-backup-schedule: the control plane printed no ed25519 public key"):
        backup_public_key("datastore-backup-schedule", "changed=none\nssh-rsa AAAA\n")
    assert backup_public_key("s", f"x\n{PUBLIC}\n") == PUBLIC


@pytest.mark.parametrize(("backup", "message"), [
    ({"host": None}, "backup.host: required with `enabled: true`"),
    ({"host": "receipt"}, "backup.host: 'receipt' is a control plane"),
    ({"host": "nowhere"}, "backup.host: no host named 'nowhere'"),
    ({"schedule": "daily\nExecStart=/bin/sh"}, "schedule"),
    ({"objectStorage": {"url": "http://s3.example.org/b"}}, "url"),
    ({"objectStorage": {"url": "https://s3.example.org/bkt", "credentialsConfig": "sshPrivateKey"}}, "already holds the ssh secret"),
])
def test_bad_backup_config_is_rejected_naming_the_key(backup: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=re.escape(message)):
        evaluate_config(backup_config(**backup))


def _office_server(raw: dict[str, Any], nat: bool) -> None:
    """A plain server (no GPU) at the office: NAT'd as the example's office is, or with a public address."""
    office = next(s for s in raw["sites"] if s["name"] == "office")
    office["nat"] = nat
    ws2 = next(h for h in raw["hosts"] if h["name"] == "ws-2")
    raw["hosts"].append({**ws2, "name": "nas", "vpnAddress": "100.64.1.9",
                         "existing": {"address": "198.51.100.30", **({} if nat else {"publicAddress": "198.51.100.30"})}})
    for key in ("gpu", "nvidia", "taints", "labels"):
        raw["hosts"][-1].pop(key, None)
    if not nat:
        for h in raw["hosts"]:
            if h["site"] == "office" and h["name"] != "nas":
                h["existing"]["publicAddress"] = h["existing"]["address"]


@pytest.mark.parametrize(("case", "host", "nat", "message"), [
    ("GPU workstation", "ws-1", True, "backup.host: 'ws-1' is a GPU workstation"),
    ("GPU workstation with a public address", "ws-1", False, "backup.host: 'ws-1' is a GPU workstation"),
    ("NAT'd on-prem server", "nas", True, "backup.host: 'nas' is in the NAT'd on-prem site 'office'"),
])
def test_an_untrusted_backup_host_is_refused_in_one_line_naming_the_key(case: str, host: str, nat: bool, message: str) -> None:
    """Every snapshot holds every Secret: the store is trusted like the control plane."""
    raw = backup_config(host=host)
    _office_server(raw, nat)
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw)
    assert len(err.value.problems) == 1, f"{case}: {err.value.problems}"
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:" + message) and "name a cloud host" in problem, problem


def test_an_on_prem_server_with_a_public_address_may_keep_the_snapshots() -> None:
    raw = backup_config(host="nas")
    _office_server(raw, nat=False)
    ev = evaluate_config(raw, command_stdout={"datastore-backup-schedule": f"{PUBLIC}\n"})
    assert ev.by_name("datastore-backup-store")


# --- The snapshot on the control plane -------------------------------------------------------

def control_plane(tmp_path: Path) -> tuple[StubHost, dict[str, str]]:
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S, "ssh": SSH, "s3cmd": S3CMD})
    params = {"BACKUP_WORK_DIR": str(tmp_path / "work"), "BACKUP_TARGET": "hybridai-backup@100.64.0.1",
              "TEXTFILE_DIR": str(tmp_path / "textfile"), "BACKUP_S3_CREDENTIALS": str(tmp_path / "s3.cfg"),
              "BACKUP_DIGESTS": str(tmp_path / "digests")}
    return h, params


def test_snapshot_is_copied_then_the_success_metric_is_written(tmp_path: Path) -> None:
    h, params = control_plane(tmp_path)
    result = h.run("datastore-backup.sh", **params)
    assert result.returncode == 0, result.stderr
    args = (h.state / "ssh-args").read_text().splitlines()
    assert "StrictHostKeyChecking=yes" in args and "BatchMode=yes" in args and args[-2] == "hybridai-backup@100.64.0.1"
    name = args[-1]
    assert re.fullmatch(r"backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz", name)
    with tarfile.open(h.state / "received") as tar:
        assert tar.getnames()[0] == name.removesuffix(".tar.gz")
    prom = (tmp_path / "textfile" / "datastore-backup.prom").read_text()
    assert re.search(rf"^{METRIC} [0-9]{{10}}$", prom, re.M) and f"# TYPE {METRIC} gauge" in prom
    assert not (h.state / "s3cmd-args").exists()  # no object storage configured: nothing uploaded


@pytest.mark.parametrize("failing", ["dbctl-fail", "ssh-fail", "ssh-silent"])
def test_a_failed_snapshot_or_copy_writes_no_metric(tmp_path: Path, failing: str) -> None:
    h, params = control_plane(tmp_path)
    (h.state / failing).touch()
    result = h.run("datastore-backup.sh", **params)
    assert result.returncode == 1
    assert not (tmp_path / "textfile" / "datastore-backup.prom").exists()


def test_upload_reads_credentials_from_a_root_only_file_never_the_command_line(tmp_path: Path) -> None:
    h, params = control_plane(tmp_path)
    (tmp_path / "s3.cfg").write_text("[default]\naccess_key = AKIAEXAMPLE\nsecret_key = s3cr3t-Value/xyz\n")
    result = h.run("datastore-backup.sh", **params, BACKUP_S3_URL="https://s3.example.org:8443/bucket", BACKUP_S3_REGION="regionone")
    assert result.returncode == 0, result.stderr
    args = (h.state / "s3cmd-args").read_text().splitlines()
    assert args[:6] == ["-c", str(tmp_path / "s3.cfg"), "--host=s3.example.org:8443", "--host-bucket=s3.example.org:8443",
                        "--region=regionone", "--ssl"]
    assert args[-3] == "put" and re.fullmatch(r"s3://bucket/backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz", args[-1])
    assert "--multipart-chunk-size-mb=15" in args  # a small snapshot: s3cmd's default parts
    assert "s3cr3t-Value" not in "\n".join(h.calls())


@pytest.mark.parametrize(("gib", "part_mib"), [(1, 15), (200, 37), (1000, 128)])
def test_upload_parts_grow_with_the_snapshot_so_s3s_10000_part_limit_holds(tmp_path: Path, gib: int, part_mib: int) -> None:
    h, params = control_plane(tmp_path)
    h = StubHost(tmp_path, stubs={**h.stubs, "stat": f'echo {gib * 2**30}'})
    (tmp_path / "s3.cfg").write_text("[default]\n")
    assert h.run("datastore-backup.sh", **params, BACKUP_S3_URL="https://s3.example.org/bucket").returncode == 0
    assert f"--multipart-chunk-size-mb={part_mib}" in (h.state / "s3cmd-args").read_text().splitlines()
    assert gib * 1024 / part_mib < 10000


def test_upload_to_a_url_that_is_no_endpoint_and_bucket_fails_and_records_no_success(tmp_path: Path) -> None:
    h, params = control_plane(tmp_path)
    (tmp_path / "s3.cfg").write_text("[default]\n")
    result = h.run("datastore-backup.sh", **params, BACKUP_S3_URL="https://s3.example.org/a/b")
    assert result.returncode == 1 and "backup.objectStorage.url" in result.stderr
    assert not (tmp_path / "textfile" / "datastore-backup.prom").exists()


def test_install_writes_units_and_key_once_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    h = StubHost(tmp_path)
    params = {"BACKUP_RUNNER": "#!/bin/bash\necho run", "BACKUP_SCHEDULE": "*-*-* 02:30:00", "BACKUP_KNOWN_HOSTS_LINE": "100.64.0.1 ssh-ed25519 AAAA",
              "BACKUP_SSH_KEY": str(tmp_path / "key" / "backup"), "BACKUP_S3": "yes", "BACKUP_ETC": str(tmp_path / "etc"),
              "BACKUP_LIB": str(tmp_path / "lib"), "UNIT_DIR": str(tmp_path / "units")}
    first = h.run("datastore-backup-install.sh", stdin=CREDENTIALS, **params)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]{68}", first.stdout.strip())  # only the public key
    assert "systemctl enable hybrid-ai-datastore-backup.timer" in h.calls()
    timer = (tmp_path / "units" / "hybrid-ai-datastore-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer
    service = (tmp_path / "units" / "hybrid-ai-datastore-backup.service").read_text()
    assert re.search(r"^Environment=PATH=.*:/snap/bin$", service, re.M) and f"ExecStart={tmp_path}/lib/datastore-backup" in service
    creds = tmp_path / "etc" / "backup-s3.cfg"
    assert creds.read_text() == "[default]\naccess_key = AKIAEXAMPLE\nsecret_key = s3cr3t-Value/xyz\n" and creds.stat().st_mode & 0o777 == 0o600
    assert any(c.startswith("apt-get") and c.endswith("install -y -q --no-install-recommends s3cmd") for c in h.calls())
    assert (tmp_path / "key" / "backup").stat().st_mode & 0o777 == 0o600
    again = h.run("datastore-backup-install.sh", stdin=CREDENTIALS, **params)
    assert again.returncode == 0 and again.stdout == first.stdout and h.state_changes() == []
    assert "changed=none" in again.stderr


def test_install_refuses_a_schedule_that_is_not_a_calendar_expression(tmp_path: Path) -> None:
    result = StubHost(tmp_path).run("datastore-backup-install.sh", BACKUP_RUNNER="x", BACKUP_KNOWN_HOSTS_LINE="x",
                                    BACKUP_SCHEDULE="daily\nExecStartPre=/bin/sh")
    assert result.returncode == 1 and "BACKUP_SCHEDULE is not a calendar expression" in result.stderr


# --- Restore ---------------------------------------------------------------------------------

def test_restore_checks_the_archive_then_restores_and_waits_ready(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S})
    file = tmp_path / "backup-20260101T023000Z.tar.gz"
    file.write_bytes(snapshot("backup-20260101T023000Z"))
    result = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_SHA256=sha256(file))
    assert result.returncode == 0, result.stderr
    calls = h.calls()
    assert calls[0] == "microk8s status --wait-ready --timeout 120" and calls[2] == "microk8s status --wait-ready --timeout 600"
    assert re.fullmatch(r"microk8s dbctl restore /tmp/hybrid-ai-restore\.\w+/backup-20260101T023000Z\.tar\.gz", calls[1])
    assert (h.state / "restored.tar.gz").read_bytes() == file.read_bytes()


def test_restore_takes_a_file_the_store_named_by_its_own_clock(tmp_path: Path) -> None:
    """dbctl takes the snapshot directory from the file name: restore hands it a copy named so."""
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S})
    file = tmp_path / "backup-20260101T023105Z.tar.gz"  # stored a minute after the control plane named it
    file.write_bytes(snapshot("backup-20260101T023000Z"))
    result = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_SHA256=sha256(file))
    assert result.returncode == 0, result.stderr
    assert h.calls()[1].endswith("/backup-20260101T023000Z.tar.gz")
    assert (h.state / "restored.tar.gz").read_bytes() == file.read_bytes()


@pytest.mark.parametrize(("name", "entries", "message"), [
    ("backup-20260101T023000Z", {"backup-20260101T023000Z/../../etc/x": b"x"}, "unsafe path"),
    ("backup-20260101T023000Z", {"other/x": b"x"}, "holds other, not a snapshot directory"),
    ("backup-20260101T023000Z", {"backup-a/0.key": b"x", "backup-b/0.key": b"x"}, "backup-b/0.key, which is not a datastore file under backup-a/"),
    ("notes", None, "is not a snapshot name"),
])
def test_restore_refuses_a_bad_archive_before_touching_the_cluster(tmp_path: Path, name: str, entries: dict[str, bytes] | None, message: str) -> None:
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S})
    file = tmp_path / f"{name}.tar.gz"
    file.write_bytes(snapshot(name, entries))
    result = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_SHA256=sha256(file))
    assert result.returncode == 1 and message in result.stderr
    assert h.calls() == []


def test_restore_on_a_stopped_cluster_says_to_start_it(tmp_path: Path) -> None:
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S})
    (h.state / "down").touch()
    file = tmp_path / "backup-20260101T023000Z.tar.gz"
    file.write_bytes(snapshot("backup-20260101T023000Z"))
    result = h.run("datastore-restore.sh", BACKUP_FILE=str(file), BACKUP_SHA256=sha256(file))
    assert result.returncode == 1 and "snap start microk8s" in result.stderr
    assert not (h.state / "restored.tar.gz").exists()


@pytest.mark.parametrize("credentials", ['AK:se"cret', "AK:se\\cret", "AK:a b", "no-colon", ""])
def test_install_refuses_credentials_that_would_break_the_curl_config(tmp_path: Path, credentials: str) -> None:
    h = StubHost(tmp_path)
    result = h.run("datastore-backup-install.sh", stdin=credentials, BACKUP_RUNNER="x", BACKUP_KNOWN_HOSTS_LINE="x", BACKUP_SCHEDULE="daily",
                   BACKUP_S3="yes", BACKUP_SSH_KEY=str(tmp_path / "key"), BACKUP_ETC=str(tmp_path / "etc"),
                   BACKUP_LIB=str(tmp_path / "lib"), UNIT_DIR=str(tmp_path / "units"))
    assert result.returncode == 1 and "must be ACCESS:SECRET (backup.objectStorage)" in result.stderr
    assert not (tmp_path / "etc" / "backup-s3.cfg").exists()
    assert not credentials or credentials not in result.stderr + result.stdout  # never echoed
