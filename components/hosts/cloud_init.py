"""The cloud-init document for new VMs: a pure function, validated by `cloud-init schema` in tests."""

from __future__ import annotations

import yaml


def user_data(hostname: str, host_private_key: str, host_public_key: str) -> str:
    """Install the program-generated SSH host key, so the first connection can already pin it."""
    doc = {
        "hostname": hostname,
        "preserve_hostname": False,
        # Replace the image's host keys with ours. Only ed25519 may be generated, and ours
        # is already in place, so cloud-init generates none (the schema needs a non-empty list).
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],
        "ssh_keys": {"ed25519_private": host_private_key, "ed25519_public": host_public_key},
        "disable_root": True,
        "ssh_pwauth": False,
        "package_update": True,
    }
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)
