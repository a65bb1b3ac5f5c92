"""The mirrored example plan passes every policy: its mirror steps carry registry credentials on
stdin only, never logged and never on a command line."""

from __future__ import annotations

from stacks.load import secret_keys_of, validate
from tests.policy.conftest import RESOURCE_RULES, resource_args, rules, stack_args, violations
from tests.support.helpers import evaluate_config, stack_config


def test_the_airgap_plan_passes_every_policy() -> None:
    raw = stack_config("airgap")
    ev = evaluate_config(raw, secrets={k: f"test-{k}-value" for k in secret_keys_of(validate(raw))}, stack="airgap")
    steps = [r for r in ev.resources if r.name.endswith("-bootstrap-mirrors")]
    assert len(steps) == 5
    for r in ev.resources:
        for check in RESOURCE_RULES:
            assert violations(check, resource_args(ev, r.name)) == [], (check.__name__, r.name)
    assert violations(rules.no_world_open_ports, stack_args(ev)) == []
    for r in steps:
        assert "test-mirrorCredentials-value" not in str(r.inputs.get("create"))
