"""A passphrase-protected SSH key is refused when the config loads, with one line and the fix;
keys made by the real ssh-keygen in each format it writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stacks.load import ConfigError
from stacks.ssh_key import passphrase_protected
from tests.support.helpers import evaluate_config, stack_config

FORMATS = [("ed25519", "RFC4716"), ("rsa", "PEM"), ("ecdsa", "PKCS8")]  # RFC4716 is OpenSSH's own format for private keys


def keygen(folder: Path, kind: str, fmt: str, passphrase: str) -> str:
    path = folder / f"{kind}-{fmt}-{bool(passphrase)}"
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-m", fmt, "-N", passphrase, "-C", "", "-f", str(path)],
                   check=True, capture_output=True, timeout=60)
    return path.read_text()


@pytest.mark.parametrize(("kind", "fmt"), FORMATS)
def test_protected_keys_are_told_from_plain_ones(kind: str, fmt: str, tmp_path: Path) -> None:
    assert passphrase_protected(keygen(tmp_path, kind, fmt, "correct horse"))
    assert not passphrase_protected(keygen(tmp_path, kind, fmt, ""))


def test_not_a_key_is_left_to_the_ssh_dial() -> None:
    assert not passphrase_protected("-----BEGIN OPENSSH PRIVATE KEY-----\n!!not base64!!\n-----END OPENSSH PRIVATE KEY-----\n")
    assert not passphrase_protected("")


def test_a_protected_key_is_refused_with_one_line_naming_the_key_and_the_fix(tmp_path: Path) -> None:
    key = keygen(tmp_path, "ed25519", "RFC4716", "correct horse")
    with pytest.raises(ConfigError) as err:
        evaluate_config(stack_config("dev"), {"sshPrivateKey": key})
    assert err.value.problems == [
        "hybrid-ai:sshPrivateKey: the private key has a passphrase, which the SSH connections cannot type; use a deploy key without one "
        "(`ssh-keygen -t ed25519 -N '' -f ~/.ssh/hybrid-ai`, its .pub in the hosts' authorized_keys), "
        "then `pulumi config set --secret sshPrivateKey < ~/.ssh/hybrid-ai`"]
    body = key.splitlines()[1]
    assert body not in str(err.value)
    evaluate_config(stack_config("dev"), {"sshPrivateKey": keygen(tmp_path, "ed25519", "RFC4716", "")})  # a plain key loads
