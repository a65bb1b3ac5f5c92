"""`make check STACK=<name>`: the render, then every rule of the policy pack (policy/rules.py)
against the rendered plan, offline: what `pulumi preview --policy-pack policy` would refuse
(an unpinned image, a port open to the world, Let's Encrypt's production issuer on a stack
that is not a production one...) is caught before any CLI or credential is involved.

Each policy gets its own section of the policy config (`--policy-config`, the same JSON file
`pulumi preview --policy-pack-config` takes: `{"<policy name>": {"<key>": <value>}}`), with
the pack's defaults beneath. A value the plan cannot know offline makes that policy skip the
resource, as CrossGuard does during a preview.
Exit code: 0 every policy passes, 1 a policy is violated, 2 the stack does not render.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from tools.render.__main__ import PROJECT_DIR, render
from tools.render.plan import Evaluation
from tools.render.write import reveal

# The pack's modules import each other by name, as CrossGuard loads them from policy/.
sys.path.insert(0, str(PROJECT_DIR / "policy"))
import rules


def _settings(policy_config: dict[str, Any], name: str) -> dict[str, Any]:
    own = policy_config.get(name, {})
    return {k: v for k, v in own.items() if k != "enforcementLevel"} if isinstance(own, dict) else {}


def violations(ev: Evaluation, policy_config: dict[str, Any]) -> list[str]:
    """`<policy>: <resource>: <message>` for every violation of every policy of the pack."""
    found: list[str] = []
    for policy in rules.POLICIES:
        settings = _settings(policy_config, policy.name)

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            where = next((r.name for r in ev.resources if r.urn == urn), None) if urn else None
            named = where is not None and not message.startswith(f"{where}: ")  # many rules name the resource themselves
            found.append(f"{name}: {f'{where}: ' if named else ''}{message}")

        if isinstance(policy, ResourceValidationPolicy):
            for r in ev.resources:
                args = ResourceValidationArgs(r.type, unknown_checking_proxy(reveal(r.inputs)), r.urn, r.name,
                                              None, None, settings)  # type: ignore[arg-type]
                def report_here(message: str, urn: str | None = None, own: str = r.urn) -> None:
                    report(message, urn or own)

                for validate in policy.validate if isinstance(policy.validate, list) else [policy.validate]:
                    try:
                        validate(args, report_here)
                    except UnknownValueError:
                        continue  # CrossGuard skips the resource; `pulumi up` checks it with the value known
        elif isinstance(policy, StackValidationPolicy):
            built = {r.urn: PolicyResource(r.type, unknown_checking_proxy(reveal(r.inputs)), r.urn, r.name,
                                           None, None, None, [], {}) for r in ev.resources}  # type: ignore[arg-type]
            for r in ev.resources:
                built[r.urn].dependencies = [built[d] for d in r.dependencies if d in built]
            try:
                policy.validate(StackValidationArgs(list(built.values()), settings), report)
            except UnknownValueError:
                continue
    return found


def internet_sources(directory: Path, stack: str, out: Path) -> list[str]:
    """On a stack with mirrors: every internet source a host script or manifest of the render names."""
    from stacks.load import validate
    from tools.mirror.sources import findings
    from tools.render.evaluate import raw_stack_config

    cfg = validate(raw_stack_config(directory, stack))
    if all(cfg.mirrors_of(h).empty for h in cfg.hosts):
        return []
    return [f"internet-source: {f}" for f in findings(out / "artifacts", cfg)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev", help="stack name: Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="render folder (default build/<stack>)")
    parser.add_argument("--dir", type=Path, default=PROJECT_DIR, help="folder holding Pulumi.<stack>.yaml (default: the project)")
    parser.add_argument("--policy-config", type=Path, help="policy config JSON, as for `pulumi preview --policy-pack-config`")
    args = parser.parse_args(argv)
    ev = render(args.dir, args.stack, args.out or PROJECT_DIR / "build" / args.stack)
    if ev is None:
        return 2
    policy_config: dict[str, Any] = json.loads(args.policy_config.read_text()) if args.policy_config else {}
    found = violations(ev, policy_config) + internet_sources(args.dir, args.stack, args.out or PROJECT_DIR / "build" / args.stack)
    for line in found:
        print(f"check: {line}", file=sys.stderr)
    names = ", ".join(p.name for p in rules.POLICIES)
    print(f"check: stack '{args.stack}': {len(found)} policy violation(s) ({len(rules.POLICIES)} policies: {names})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
