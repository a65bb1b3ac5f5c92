"""Bad configs whose message must meet the user where they are: a near key for a misspelled
one, an example value for a bad format (never a regular expression), the key the user wrote
for a value the program derived from it. Same shape as `bad_configs.BAD`."""

from __future__ import annotations

from collections.abc import Callable

from tests.stacks.bad_configs import Raw, host, set_in


def _gpu_model_without_profile(raw: Raw) -> None:
    del raw["timeSlicing"]["defaultProfile"]
    host(raw, "ws-1")["gpu"]["model"] = "a100"


WORDS: list[tuple[str, Callable[[Raw], None], str, str]] = [
    ("GPU model naming no profile", _gpu_model_without_profile, "hybrid-ai:hosts[3].gpu.model", "no time-slicing profile 'a100'"),
    # spelling and value formats: the fix in words, never a regular expression
    ("misspelled key in a host's ssh", lambda raw: host(raw, "ws-1")["ssh"].update(hostKy="x"), "hybrid-ai:hosts[3].ssh.hostKy", "did you mean `hostKey`?"),
    ("misspelled key in a model", set_in(["models", 0, "memroy"], "1Gi"), "hybrid-ai:models[0].memroy", "did you mean `memory`?"),
    ("unknown key far from any", set_in(["vpn", "zzzz"], 1), "hybrid-ai:vpn.zzzz", "this section takes `backend`"),
    ("memory with a space", set_in(["models", 0, "memory"], "16 GB"), "hybrid-ai:models[0].memory", "e.g. '512Mi', '16Gi' or '16G'"),
    ("CPU of zero", set_in(["models", 0, "cpu"], "0m"), "hybrid-ai:models[0].cpu", "must be more than zero"),
    ("pull timeout in words", set_in(["cluster", "imagePullTimeout"], "30 minutes"), "hybrid-ai:cluster.imagePullTimeout", "e.g. '30m'"),
]
