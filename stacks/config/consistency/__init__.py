"""Every cross-section rule of the stack config, in one place (this package).

`cross_checks(cfg)` reads a `StackConfig` whose sections have each validated on its own; it
returns one line per problem, `<key path>: <what is wrong>; <what would be right>`, and the
loader (`stacks/load.py`) raises them together before any resource is registered. Rules: what must be unique is unique, what must lie in a range lies in it,
requests fit what the hosts offer, and a setting that would be ignored or overridden is
rejected with the reason rather than silently dropped.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from stacks.config.consistency.backup import backup_host
from stacks.config.consistency.catalog import gpus_and_models, models, node_fit, pods, requests
from stacks.config.consistency.llm import llm_models
from stacks.config.consistency.mirrored import mirrored_stack
from stacks.config.consistency.namespaces import workload_namespace
from stacks.config.consistency.network import addresses, hosts, networks, ports, roles
from stacks.config.consistency.reach import deployer_reach
from stacks.config.consistency.settings import secret_keys, unused_settings
from stacks.config.consistency.upgrades import upgrades
from stacks.config.gpu_budget import budget_errors

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig


def cross_checks(cfg: StackConfig) -> list[str]:
    if errors := overlay_too_small(cfg):
        return errors
    errors += _unique("sites", [s.name for s in cfg.sites])
    errors += _unique("hosts", [h.name for h in cfg.hosts])
    errors += _unique("models", [m.name for m in cfg.models])
    errors += _unique("timeSlicing.profiles", [p.name for p in cfg.time_slicing.profiles])
    errors += networks(cfg)
    errors += workload_namespace(cfg)
    errors += hosts(cfg)
    errors += roles(cfg)
    errors += gpus_and_models(cfg)
    if not errors:  # the rules below assume names and sites resolve
        errors += addresses(cfg)
        errors += ports(cfg)
        errors += unused_settings(cfg)
        errors += upgrades(cfg)
        errors += models(cfg)
        errors += requests(cfg)
        errors += budget_errors(cfg) if not errors else []
        errors += node_fit(cfg)
        errors += pods(cfg)
        errors += llm_models(cfg)
        errors += backup_host(cfg)
        errors += secret_keys(cfg)
        errors += deployer_reach(cfg)
        errors += mirrored_stack(cfg)
    return errors


def overlay_too_small(cfg: StackConfig) -> list[str]:
    """Checked alone: with too few addresses every derived address would collide."""
    usable = cfg.vpn.overlay_cidr.num_addresses - 3  # network, broadcast, the operator's
    if usable < len(cfg.hosts):
        return [f"vpn.overlayCidr: {cfg.vpn.overlay_cidr} has {max(usable, 0)} usable addresses for {len(cfg.hosts)} hosts "
                "and the operator; use a larger range (e.g. a /24)"]
    return []


def _unique(key: str, names: list[str]) -> list[str]:
    return [
        f"{key}[{names.index(name, names.index(name) + 1)}].name: '{name}' is used twice; names must be unique"
        for name, n in Counter(names).items()
        if n > 1
    ]
