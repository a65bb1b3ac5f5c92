"""What the policy tests share: the pack's own rules module, its call arguments built from a
rendered plan, and the reference plans."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from tests.support.helpers import PROJECT, evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.write import reveal

sys.path.insert(0, str(PROJECT / "policy"))
import rules as rules  # the pack's own module, as `pulumi preview --policy-pack policy` loads it; the tests import it from here

RESOURCE_RULES: list[Callable[..., None]] = [
    rules.ssh_host_key_pinned, rules.secrets_kept_out_of_logs, rules.images_pinned,
    rules.production_issuer_only_on_production, rules.time_slicing_replicas_bounded, rules.no_command_environment,
    *(p.validate for p in rules.POLICIES if p.name in ("no-privileged-or-host-pods", "no-cluster-admin", "no-local-commands",
                                                        "no-secret-on-logged-command-line")),
]


def resource_args(ev: Evaluation, name: str, props: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    r = ev.by_name(name)
    return ResourceValidationArgs(r.type, unknown_checking_proxy(props if props is not None else reveal(r.inputs)), r.urn, r.name,
                                  None, None, config)  # type: ignore[arg-type]


def stack_args(ev: Evaluation, config: dict[str, Any] | None = None) -> StackValidationArgs:
    built = {r.urn: PolicyResource(r.type, unknown_checking_proxy(reveal(r.inputs)), r.urn, r.name, None, None, None, [], {})  # type: ignore[arg-type]
             for r in ev.resources}
    for r in ev.resources:
        built[r.urn].dependencies = [built[d] for d in r.dependencies if d in built]
    return StackValidationArgs(list(built.values()), config)


def violations(check: Callable[..., None], args: Any) -> list[str]:
    found: list[str] = []
    check(args, lambda message, urn=None: found.append(message))
    return found


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"), stack="dev")


@pytest.fixture(scope="module")
def prod() -> Evaluation:
    return evaluate_config(stack_config("prod"), stack="prod")


