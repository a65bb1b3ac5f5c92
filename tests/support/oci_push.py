"""Push a stand-in image (one tiny layer, named as a stand-in) to a real OCI registry over the
distribution API: `python -m tests.support.oci_push <api root> <repository> <tag> <ca> <user:password>`.
Run inside the lab's network namespace, where the registry is."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import ssl
import sys
import tarfile
import urllib.request


def _layer() -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"hybrid-ai stand-in image: no program, only this file\n"
        info = tarfile.TarInfo("standin.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


def push(api: str, repo: str, tag: str, ca: str = "", credentials: str = "", label: str = "") -> str:
    """Push; `ca` and `credentials` empty: a plain-HTTP registry without auth. The image's config
    names it (or `label`), so each stand-in image has a digest of its own."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    auth = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else ""

    def call(method: str, url: str, body: bytes = b"", content_type: str = "application/octet-stream") -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(url, data=body if method != "POST" else None, method=method,
                                         headers={"Content-Type": content_type, **({"Authorization": auth} if auth else {})})
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, dict(response.headers)

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, headers = call("POST", f"{api}/{repo}/blobs/uploads/")
        location = headers["Location"]
        location = location if location.startswith("http") else api.split("/v2", 1)[0] + location
        call("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data)
        return digest

    layer, diff_id = _layer()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "config": {"Labels": {"hybrid-ai.test/stand-in": label or f"{repo}:{tag}"}}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layer), "size": len(layer)}],
    }).encode()
    call("PUT", f"{api}/{repo}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


if __name__ == "__main__":
    print(push(*sys.argv[1:7]))
