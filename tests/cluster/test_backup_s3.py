"""The snapshot's upload to object storage, against a server that verifies SigV4 (moto, its
authentication on, behind a recorder): the real datastore-backup.sh with this machine's s3cmd,
its credentials file as datastore-backup-install.sh writes it. S3 also requires a signed
x-amz-content-sha256 equal to the body's hash, which moto does not check: the recorder does."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_backup import SSH
from tests.support.helpers import stop_processes, unavailable
from tests.support.stubs import StubHost

BUCKET = "hybrid-backups"
# dbctl as at 1.32 (tests/cluster/test_backup.py), one key whose value has the size the test picks.
MICROK8S = """
case "$1 $2" in
  "dbctl backup") d=$(mktemp -d); n=$(basename "$4"); mkdir "$d/$n"
                  printf /registry/big > "$d/$n/0.key"; head -c "$(cat "$STATE/size")" /dev/urandom > "$d/$n/0.data"; tar -czf "$4.tar.gz" -C "$d" "$n";;
esac"""


class S3:
    def __init__(self, port: int, records: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.records = records
        self.access_key = self.secret = ""

    def client(self, service: str) -> Any:
        import boto3

        key = {"aws_access_key_id": self.access_key or "unsigned", "aws_secret_access_key": self.secret or "unsigned"}
        return boto3.client(service, endpoint_url=self.url, region_name="eu-central-1", **key)

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.records.read_text().splitlines()]


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3]:
    pytest.importorskip("moto", reason="moto (requirements-dev.txt) verifies the signatures")
    records = tmp_path / "requests.jsonl"
    records.touch()
    server = subprocess.Popen([sys.executable, "-m", "tests.support.s3_server", str(records)], stdout=subprocess.PIPE,
                              stderr=(tmp_path / "s3.log").open("wb"), cwd=Path(__file__).resolve().parents[2])
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()  # bounded: the server prints its port or exits
        assert port.isdigit(), (tmp_path / "s3.log").read_text()
        store = S3(int(port), records)
        iam = store.client("iam")  # the server's unsigned setup requests: a user allowed S3, its key
        iam.create_user(UserName="backup")
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        iam.put_user_policy(UserName="backup", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        store.access_key, store.secret = key["AccessKeyId"], key["SecretAccessKey"]
        store.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        yield store
    finally:
        stop_processes([server], timeout=10)


def control_plane(tmp_path: Path, s3: S3, size: int) -> tuple[StubHost, dict[str, str]]:
    """A control plane whose install wrote the s3cmd credentials file; its snapshot `size` bytes."""
    if not shutil.which("s3cmd"):
        unavailable("s3cmd is not installed (apt-get install s3cmd)")
    h = StubHost(tmp_path, stubs={"microk8s": MICROK8S, "ssh": SSH})
    (h.state / "size").write_text(str(size))
    installed = h.run("datastore-backup-install.sh", stdin=f"{s3.access_key}:{s3.secret}", BACKUP_RUNNER="x", BACKUP_SCHEDULE="daily",
                      BACKUP_KNOWN_HOSTS_LINE="x", BACKUP_S3="yes", BACKUP_SSH_KEY=str(tmp_path / "key"),
                      BACKUP_ETC=str(tmp_path / "etc"), BACKUP_LIB=str(tmp_path / "lib"), UNIT_DIR=str(tmp_path / "units"))
    assert installed.returncode == 0, installed.stderr
    params = {"BACKUP_WORK_DIR": str(tmp_path / "work"), "BACKUP_TARGET": "hybridai-backup@100.64.0.1",
              "TEXTFILE_DIR": str(tmp_path / "textfile"), "BACKUP_S3_CREDENTIALS": str(tmp_path / "etc" / "backup-s3.cfg"),
              "BACKUP_S3_URL": f"{s3.url}/{BUCKET}", "BACKUP_S3_REGION": "eu-central-1", "BACKUP_DIGESTS": str(tmp_path / "digests")}
    return h, params


@pytest.mark.parametrize("size", [200_000, 20_000_000], ids=["one-put", "multipart"])
def test_the_upload_is_signed_with_the_files_sha256_and_stored_whole(tmp_path: Path, s3: S3, size: int) -> None:
    h, params = control_plane(tmp_path, s3, size)
    result = h.run("datastore-backup.sh", **params)
    assert result.returncode == 0, result.stderr
    snapshot = next((tmp_path / "work").glob("backup-*.tar.gz"))
    stored = s3.client("s3").get_object(Bucket=BUCKET, Key=snapshot.name)["Body"].read()
    assert stored == snapshot.read_bytes()
    uploads = [r for r in s3.requests() if r["method"] in ("PUT", "POST") and r["path"] == f"/{BUCKET}/{snapshot.name}"]
    with_body = [r for r in uploads if r["method"] == "PUT" and r["body_length"]]  # the POSTs start and complete a multipart upload
    assert with_body and sum(r["body_length"] for r in with_body) == snapshot.stat().st_size
    assert (len(with_body) > 1) == (size > 15_000_000)  # s3cmd's multipart chunk: 15 MB
    for r in uploads:  # every request of the upload: accepted, and signed over the body's true hash
        assert r["status"].startswith("200"), r
        assert r["headers"]["x-amz-content-sha256"] == r["body_sha256"], r
        assert "x-amz-content-sha256" in r["headers"]["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert (tmp_path / "textfile" / "datastore-backup.prom").exists()


def test_the_server_refuses_what_curl_7_sends_and_a_wrong_key_and_then_no_success_is_recorded(tmp_path: Path, s3: S3) -> None:
    """What the script sent before (curl --aws-sigv4 -T, 7.81-7.88: an empty-body hash, no
    x-amz-content-sha256) is refused by this server, so the test above could fail; a wrong
    secret fails the script and records no success."""
    h, params = control_plane(tmp_path, s3, 1000)
    upload = tmp_path / "x.tar.gz"
    upload.write_bytes(b"\x1f\x8b" + b"0" * 1000)
    config = tmp_path / "curl.cfg"
    config.write_text(f'user = "{s3.access_key}:{s3.secret}"\n')
    curl = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "--aws-sigv4", "aws:amz:eu-central-1:s3",
                           "-K", str(config), "-T", str(upload), f"{s3.url}/{BUCKET}/x.tar.gz"], capture_output=True, text=True, timeout=60)
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10).stdout.split()[1]
    if tuple(int(p) for p in version.split(".")[:2]) < (8, 0):  # 8.0+ signs UNSIGNED-PAYLOAD instead (docs/upstream.md)
        assert curl.stdout == "403", curl
        sent = s3.requests()[-1]
        assert "x-amz-content-sha256" not in sent["headers"]
    cfg = tmp_path / "etc" / "backup-s3.cfg"
    cfg.write_text(cfg.read_text().replace(s3.secret, "wrong" + s3.secret[5:]))
    result = h.run("datastore-backup.sh", **params)
    assert result.returncode == 1 and "uploading backup-" in result.stderr
    assert not (tmp_path / "textfile" / "datastore-backup.prom").exists()
    assert s3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert hashlib.sha256(b"").hexdigest() not in {r["headers"].get("x-amz-content-sha256") for r in s3.requests() if r["body_length"]}
