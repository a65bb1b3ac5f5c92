"""A registry mirror's change reaches containerd in the `pulumi up` that makes it: pulumi-command
re-runs a step only when its inputs change, so on every cluster node of the site one step whose
inputs changed must write MicroK8s' certs.d (`$SNAP_DATA/args/certs.d`, which containerd reads on
every pull). A new URL, a rotated credential (a Pulumi secret on the step's stdin) and a registry
taken out of the config are each checked."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.kit.shell import split_command
from stacks.load import secret_keys_of, validate
from tests.support.helpers import evaluate_config, stack_config
from tools.render.plan import Evaluation, reveal

CONTAINERDS_CERTS_D = "$SNAP_DATA/args/certs.d"
OFFICE_NODES = ("ws-1", "ws-2")


def _evaluate(raw: dict[str, Any], **over: str) -> Evaluation:
    secrets = {key: f"test-{key}" for key in secret_keys_of(validate(raw))} | over
    return evaluate_config(raw, secrets=secrets, stack="airgap")


def _office(raw: dict[str, Any]) -> dict[str, Any]:
    mirrors: dict[str, Any] = next(s for s in raw["sites"] if s["name"] == "office")["mirrors"]
    return mirrors


def _new_url(raw: dict[str, Any]) -> None:
    _office(raw)["registries"][1]["url"] = "https://mirror2.example.lan:5000/ghcr.io"


def _removed(raw: dict[str, Any]) -> None:
    _office(raw)["registries"] = [r for r in _office(raw)["registries"] if r["upstream"] != "quay.io"]


@pytest.fixture(scope="module")
def before() -> Evaluation:
    return _evaluate(stack_config("airgap"))


@pytest.mark.parametrize(("change", "secrets"), [
    (_new_url, {}),
    (lambda raw: None, {"officeMirrorCredentials": "office-pull:rotated-password"}),
    (_removed, {}),
], ids=["new-url", "rotated-credential", "registry-removed"])
def test_a_registry_change_re_runs_a_step_that_writes_containerds_certs_d(
        before: Evaluation, change: Callable[[dict[str, Any]], None], secrets: dict[str, str]) -> None:
    raw = copy.deepcopy(stack_config("airgap"))
    assert [h["name"] for h in raw["hosts"] if h["site"] == "office" and "worker" in h["roles"]] == list(OFFICE_NODES)
    change(raw)
    after = _evaluate(raw, **secrets)
    changed = before.changes(after).changed
    for node in OFFICE_NODES:
        steps = [r for r in after.resources if r.name in changed and r.type == "command:remote:Command"
                 and re.search(rf"(^|-){node}-", r.name)]
        assert steps, f"nothing re-runs on {node}"
        writers = [r.name for r in steps if CONTAINERDS_CERTS_D in split_command(reveal(r.inputs["create"]))[0]]
        assert writers, f"on {node} only {sorted(r.name for r in steps)} re-run, and none writes containerd's certs.d"
    # The cloud site's nodes have their own registries: nothing of theirs re-runs.
    assert not {n for n in changed if "receipt" in n or "interface" in n}
