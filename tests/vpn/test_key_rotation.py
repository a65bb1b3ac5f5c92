"""Key rotation in the plan (`vpn.keyEpoch`); the rotation on real hosts is
tests/vpn/test_e2e_mesh.py (under the real Pulumi CLI)."""

from __future__ import annotations

import pytest

from components.kit.shell import split_command
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation


def _key_steps(ev: Evaluation) -> dict[str, dict[str, str]]:
    return {r.name: split_command(r.inputs["create"])[1] for r in ev.of_type("command:remote:Command") if r.name.endswith("-wg-key")}


def test_key_epoch_zero_leaves_the_key_steps_as_they_were_and_a_new_epoch_reruns_every_one() -> None:
    raw = stack_config("dev")
    before = _key_steps(evaluate_config(raw))
    assert before and all("WG_KEY_EPOCH" not in params for params in before.values())  # stacks that never rotated: untouched
    raw["vpn"] = {**raw.get("vpn", {}), "keyEpoch": 3}
    ev = evaluate_config(raw)
    after = _key_steps(ev)
    assert set(after) == set(before) and all(params["WG_KEY_EPOCH"] == "3" for params in after.values())
    for name in after:  # a parameter, not a trigger: an in-place update, never a replacement that would delete the new key
        assert not ev.by_name(name).inputs.get("triggers")


def test_key_epoch_must_be_a_whole_number() -> None:
    raw = stack_config("dev")
    raw["vpn"] = {**raw.get("vpn", {}), "keyEpoch": -1}
    with pytest.raises(Exception, match="keyEpoch"):
        evaluate_config(raw)
