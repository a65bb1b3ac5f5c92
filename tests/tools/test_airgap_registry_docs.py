"""docs/airgap.md offers only pull-only registry setups that work with what the program writes: the
credential goes into `hosts.toml` as a static `[header]`, which containerd never uses to fetch a
Bearer token (docs/upstream.md), so token auth is named as not working, not as an option."""

from __future__ import annotations

import re

from components.kit.shell import script_text
from tests.support.helpers import PROJECT


def _section(title: str) -> str:
    text = (PROJECT / "docs" / "airgap.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_token_auth_is_not_offered_for_registry_mirrors() -> None:
    # The credential reaches containerd only as a static header of hosts.toml.
    assert re.search(r"printf '\[%s\]\\n  authorization = \"%s\"\\n'", script_text("mirrors.sh"))
    section = _section("Registry credentials")
    options = [line for line in section.splitlines() if line.startswith("- ")]
    assert options and not [o for o in options if "token" in o.lower()], options
    why = section[section.index("Token auth"):].split("\n\n", 1)[0]
    assert "does not work" in why and "remotes/docker/authorizer.go" in why and "hosts.toml" in why
