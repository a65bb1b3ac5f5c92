"""Bad configs whose message must meet the user where they are: a near key for a misspelled
one, an example value for a bad format (never a regular expression), the key the user wrote
for a value the program derived from it. Same shape as `bad_configs.BAD`."""

from __future__ import annotations

import base64
from collections.abc import Callable

from tests.stacks.bad_configs import Raw, host, set_in


def _gpu_model_without_profile(raw: Raw) -> None:
    del raw["timeSlicing"]["defaultProfile"]
    host(raw, "ws-1")["gpu"]["model"] = "a100"


def _cut(key: str) -> str:
    """The key line with its last four key bytes gone (the base64 still valid)."""
    kind, data = key.split()[:2]
    return f"{kind} {base64.b64encode(base64.b64decode(data)[:-4]).decode()}"


WORDS: list[tuple[str, Callable[[Raw], None], str, str]] = [
    ("GPU model naming no profile", _gpu_model_without_profile, "hybrid-ai:hosts[3].gpu.model", "no time-slicing profile 'a100'"),
    # spelling and value formats: the fix in words, never a regular expression
    ("misspelled key in a host's ssh", lambda raw: host(raw, "ws-1")["ssh"].update(hostKy="x"), "hybrid-ai:hosts[3].ssh.hostKy", "did you mean `hostKey`?"),
    ("misspelled key in a model", set_in(["models", 0, "memroy"], "1Gi"), "hybrid-ai:models[0].memroy", "did you mean `memory`?"),
    ("unknown key far from any", set_in(["vpn", "zzzz"], 1), "hybrid-ai:vpn.zzzz", "this section takes `backend`"),
    ("memory with a space", set_in(["models", 0, "memory"], "16 GB"), "hybrid-ai:models[0].memory", "e.g. '512Mi', '16Gi' or '16G'"),
    ("CPU of zero", set_in(["models", 0, "cpu"], "0m"), "hybrid-ai:models[0].cpu", "must be more than zero"),
    ("pull timeout in words", set_in(["cluster", "imagePullTimeout"], "30 minutes"), "hybrid-ai:cluster.imagePullTimeout", "e.g. '30m'"),
    # pydantic's own checks: its words, then the fix
    ("admin CIDR of a /33", set_in(["firewall", "adminCidrs"], ["192.0.2.0/33"]), "hybrid-ai:firewall.adminCidrs[0]", "prefix 0-32"),
    ("replicas of zero", set_in(["timeSlicing", "profiles", 0, "replicas"], 0), "hybrid-ai:timeSlicing.profiles[0].replicas", "raise it to at least that"),
    ("GPU count in words", lambda raw: host(raw, "ws-1")["gpu"].update(count="two"), "hybrid-ai:hosts[3].gpu.count", "a whole number in digits"),
    # values that look right at a glance
    ("address with an octet over 255", lambda raw: host(raw, "ws-1")["existing"].update(address="198.51.100.310"),
     "hybrid-ai:hosts[3].existing.address", "neither an IP address nor a host name"),
    ("host key cut short", lambda raw: host(raw, "ws-1")["ssh"].update(hostKey=_cut(host(raw, "ws-1")["ssh"]["hostKey"])),
     "hybrid-ai:hosts[3].ssh.hostKey", "cut short or too long for its type 'ssh-ed25519'"),
]
