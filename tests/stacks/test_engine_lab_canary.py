"""The engine lab's state canary (tests/stacks/test_engine_lab.py) on a lab host's folder laid
out as the lab leaves it after `up`: it finds each kind of secret, and only where it is."""

from __future__ import annotations

from pathlib import Path

from tests.stacks.test_engine_lab import host_secrets, secrets_in_state

TOKEN = "0123456789abcdef0123456789abcdef"
KEY = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUFkbWluU2VjcmV0S2V5RGF0YQo="


def receipt(tmp_path: Path) -> Path:
    current = tmp_path / "overlay/var/upper/snap/microk8s/current"
    (current / "credentials").mkdir(parents=True)
    (current / "credentials/client.config").write_text(f"users:\n- name: admin\n  user:\n    client-key-data: {KEY}\n")
    (current / "lab-issued-tokens").write_text(f"{TOKEN}\n{'f' * 32}\n")
    (tmp_path / "etc-wireguard").mkdir()
    (tmp_path / "etc-wireguard/wg0.conf").write_text("[Interface]\nPrivateKey = cHJpdmF0ZS1rZXktb2YtcmVjZWlwdA==\n")
    return tmp_path


def test_the_canary_names_the_admin_key_and_each_join_token_found_in_the_state(tmp_path: Path) -> None:
    secrets = host_secrets("receipt", receipt(tmp_path))
    assert set(secrets) == {"receipt WireGuard private key", "receipt admin client key", "receipt join token 0", "receipt join token 1"}
    encrypted = '{"ciphertext": "v1:abc"}'
    assert secrets_in_state(encrypted, secrets) == []
    leaked = f'{{"stdout": "{TOKEN}\\n", "kubeconfig": "client-key-data: {KEY}"}}'
    assert secrets_in_state(leaked, secrets) == ["receipt admin client key", "receipt join token 0"]
