"""The lab's stand-in for MicroK8s' cluster-agent on the control-plane host (tests only): HTTPS on
0.0.0.0:25000 inside that host's network and mount namespaces (so the agent guard's nftables
rules and the overlay decide who reaches it), reading the host's own
/var/snap/microk8s/current. Two calls, as cluster-agent 1.32 answers them
(canonical/microk8s-cluster-agent @ 1.32, docs/upstream.md):

- POST /cluster/api/v2.0/join {token, hostname, port, worker}: the token must be valid against
  credentials/cluster-tokens.txt (`IsValidToken`: the first line with that token decides,
  `token|expiry` expires; a whitespace-only token matches the "" after the file's final newline)
  and is removed only when it has no TTL (`ConsumeClusterToken`; `RemoveToken` drops the first
  line starting with it), else 500 "Invalid token"; the joiner's cluster-agent port must be
  this one's (502); a joiner with the contacted address is refused (503); the contacted node writes its own
  var/lock/no-cert-reissue (`CreateNoCertsReissueLock`, for every join). Every joiner gets the CA,
  the callback token, the API server's port and authorization mode and the kubelet args. The token
  is bound to no role: `worker` is what the joiner sends (`true` or "as-worker"). A worker gets
  the one-use certificate request tokens `<token>-kubelet`, `<token>-proxy`; any other joiner (a
  control plane) gets the CA key, the service-account key, dqlite's cluster certificate and key
  and the voters (a missing file: 500), if it says it can use x509 (`can_handle_x509_auth`; the
  API server has no token file). The lab's datastore is dqlite (MicroK8s' default).
- POST /cluster/api/v1.0/sign-cert {token, request}: a certificate request token valid so
  (consumed, as above) gets the CSR signed by the cluster CA, whatever its subject.

    python -m tests.support.microk8s_agent CA_DIR   (run by tests/support/engine_lab.py)
"""

from __future__ import annotations

import datetime
import http.server
import json
import re
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tools.lab.pki import sign

SNAP_DATA = Path("/var/snap/microk8s/current")
TOKENS = SNAP_DATA / "credentials" / "cluster-tokens.txt"
REQUEST_TOKENS = SNAP_DATA / "credentials" / "certs-request-tokens.txt"
PORT = 25000
# snap.clusterTokensMu and snap.certTokensMu (pkg/snap/snap.go @ 1.32): a token's check and its
# removal, and the request tokens' appends, are serialised per file within the agent; joins are
# served concurrently (one goroutine, here one thread, per request).
CLUSTER_TOKENS_LOCK = threading.Lock()
CERT_TOKENS_LOCK = threading.Lock()


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Go's unicode.IsSpace, which strings.TrimSpace strips (Python's str.strip also strips \x1c-\x1f).
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def is_valid(token: str, tokens: Path) -> tuple[bool, bool]:
    """(valid, has TTL), as util.IsValidToken: only "" is refused before trimming; the file split
    on "\n" (so after its final newline comes a line "", which a whitespace-only token matches);
    the first line whose trimmed first field is the trimmed token decides."""
    if token == "":
        return False, False
    token = token.strip(GO_SPACE)
    try:
        lines = _lines(tokens)
    except OSError:
        return False, False
    for line in lines:
        parts = line.strip(GO_SPACE).split("|", 1)
        if parts[0] != token:
            continue
        if len(parts) == 1:
            return True, False
        if not re.fullmatch(r"[+-]?[0-9]+", parts[1]) or not -2**63 <= int(parts[1]) < 2**63:  # strconv.ParseInt(s, 10, 64)
            return False, True
        return time.time() < int(parts[1]), True
    return False, False


def remove(token: str, tokens: Path) -> None:
    """util.RemoveToken: drops the first line that starts with the token as sent (untrimmed), no other."""
    lines = _lines(tokens)
    for i, line in enumerate(lines):
        if line.startswith(token):
            tokens.write_bytes("\n".join(lines[:i] + lines[i + 1:]).encode(errors="surrogateescape"))
            return


def _lines(tokens: Path) -> list[str]:
    """strings.Split(string(os.ReadFile(f)), "\n"): bytes as they are (no newline translation)."""
    return tokens.read_bytes().decode(errors="surrogateescape").split("\n")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as err:
        raise Refused(500, f"failed to retrieve {what}: {err}") from err


def _arg(service: str, flag: str) -> str:
    """snap.GetServiceArgument: the value of `flag=` in args/<service>, else ""."""
    lines = (SNAP_DATA / "args" / service).read_text().splitlines() if (SNAP_DATA / "args" / service).exists() else []
    return next((line.split("=", 1)[1].strip() for line in lines if line.split("=", 1)[0].strip() == flag), "")


def join(body: dict[str, Any], remote: str, local: str) -> dict[str, Any]:
    token = str(body.get("token", ""))
    with CLUSTER_TOKENS_LOCK:
        valid, ttl = is_valid(token, TOKENS)
        if valid and not ttl:
            remove(token, TOKENS)
    if not valid:
        raise Refused(500, "Invalid token")
    if str(body.get("port", "")) != str(PORT):
        raise Refused(502, f"The port of the cluster agent port has to be set to {PORT}")
    if remote == local:
        raise Refused(503, f"The joining node has the same IP ({local}) as the node we contact")
    # CreateNoCertsReissueLock: the contacted node marks itself part of a cluster, on every join.
    (SNAP_DATA / "var" / "lock").mkdir(parents=True, exist_ok=True)
    (SNAP_DATA / "var" / "lock" / "no-cert-reissue").touch()
    answer: dict[str, Any] = {
        "ca": (SNAP_DATA / "certs" / "ca.crt").read_text(), "callback_token": "lab-callback-token",
        "apiport": _arg("kube-apiserver", "--secure-port") or "16443", "api_authz_mode": _arg("kube-apiserver", "--authorization-mode"),
        "kubelet_args": (SNAP_DATA / "args" / "kubelet").read_text(), "hostname_override": remote,
        "service_account_key": "", "ca_key": None, "control_plane_nodes": None}
    if body.get("worker") is True or body.get("worker") == "as-worker":  # WorkerOnlyField
        with CERT_TOKENS_LOCK, REQUEST_TOKENS.open("a") as f:
            f.write(f"{token}-kubelet\n{token}-proxy\n")
        answer["control_plane_nodes"] = [local]
        return answer
    answer["ca_key"] = _read(SNAP_DATA / "certs" / "ca.key", "cluster CA key")
    answer["service_account_key"] = _read(SNAP_DATA / "certs" / "serviceaccount.key", "service account key")
    if _arg("kube-apiserver", "--token-auth-file"):
        known = _read(SNAP_DATA / "credentials" / "known_tokens.csv", "token for admin user").splitlines()
        answer["admin_token"] = next((line.split(",")[0] for line in known if line.split(",")[1:2] == ["admin"]), "")
    elif not body.get("can_handle_x509_auth"):
        raise Refused(500, "joining this MicroK8s cluster requires x509 authentication. update MicroK8s to version 1.28 or newer "
                           "and retry the join operation")
    backend = SNAP_DATA / "var" / "kubernetes" / "backend"
    voters = yaml.safe_load(_read(backend / "cluster.yaml", "dqlite cluster nodes")) or []
    answer["cluster_cert"] = _read(backend / "cluster.crt", "dqlite cluster certificate")
    answer["cluster_key"] = _read(backend / "cluster.key", "dqlite cluster key")
    answer["voters"] = [n["Address"] for n in voters if n.get("Role", 0) == 0]
    return answer


def sign_cert(body: dict[str, Any]) -> dict[str, Any]:
    token = str(body.get("token", ""))
    with CERT_TOKENS_LOCK:
        valid, _ = is_valid(token, REQUEST_TOKENS)
        if valid:
            remove(token, REQUEST_TOKENS)
    if not valid:
        raise Refused(500, "Invalid token")
    csr = x509.load_pem_x509_csr(str(body["request"]).encode())
    ca = x509.load_pem_x509_certificate((SNAP_DATA / "certs" / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((SNAP_DATA / "certs" / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return {"certificate": cert.public_bytes(serialization.Encoding.PEM).decode()}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path == "/cluster/api/v2.0/join":
                answer = join(body, self.client_address[0], self.connection.getsockname()[0])
            elif self.path == "/cluster/api/v1.0/sign-cert":
                answer = sign_cert(body)
            else:
                raise Refused(404, "not found")
            status = 200
        except Refused as err:
            status, answer = err.status, {"error": str(err)}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.client_address[0]} {format % args}", flush=True)


def main(ca_dir: Path) -> None:
    cert, key = sign(ca_dir, "cluster-agent", (), ("127.0.0.1",))
    folder = ca_dir.parent / "cluster-agent"  # the lab control plane's folder: removed with it
    folder.mkdir(exist_ok=True)
    (folder / "server.crt").write_bytes(cert)
    (folder / "server.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.crt", folder / "server.key")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"cluster-agent stand-in on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
