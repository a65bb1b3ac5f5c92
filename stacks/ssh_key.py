"""Is an SSH private key usable without a passphrase? The SSH connections (pulumi-command's
`connection`) are given no passphrase, so a protected key would fail only at the first dial of
`pulumi up`; load() refuses it before any resource exists. The key itself is never shown.

How the formats mark encryption (OpenSSH's PROTOCOL.key and sshkey.c; RFC 1421 and RFC 5958):
- `-----BEGIN OPENSSH PRIVATE KEY-----`: the base64 body is `openssh-key-v1\\0`, then the
  strings ciphername and kdfname (uint32 length, bytes); both are "none" when not encrypted.
- Legacy PEM (`BEGIN RSA/EC/DSA PRIVATE KEY`): a `Proc-Type: 4,ENCRYPTED` header.
- PKCS#8: `BEGIN ENCRYPTED PRIVATE KEY`.
"""

from __future__ import annotations

import base64
import binascii
import re

_OPENSSH = re.compile(r"-----BEGIN OPENSSH PRIVATE KEY-----(.*?)-----END OPENSSH PRIVATE KEY-----", re.S)
_MAGIC = b"openssh-key-v1\0"


def _strings(blob: bytes, count: int) -> list[bytes]:
    out, at = [], 0
    for _ in range(count):
        size = int.from_bytes(blob[at:at + 4], "big")
        out.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return out


def passphrase_protected(text: str) -> bool:
    """True when `text` holds a private key that needs a passphrase to be used."""
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or re.search(r"^Proc-Type:\s*4,\s*ENCRYPTED", text, re.M):
        return True
    if (found := _OPENSSH.search(text)) is None:
        return False
    try:
        blob = base64.b64decode("".join(found.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return False  # not a key at all: the SSH dial says so; this check is about passphrases only
    if not blob.startswith(_MAGIC):
        return False
    cipher, kdf = _strings(blob[len(_MAGIC):], 2)
    return cipher != b"none" or kdf != b"none"
