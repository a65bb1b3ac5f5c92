"""Losing the seed (the first control plane) of an HA cluster: removing it from `hosts`
changes no other node's membership and replaces nothing (docs/operations.md, Losing the seed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from components.kit.shell import split_command
from tests.support.helpers import evaluate_config, stack_config
from tools.render.diff import compare
from tools.render.evaluate import Secret
from tools.render.snapshot import records
from tools.render.write import artifacts, reveal

LOST = "receipt"  # Pulumi.ha.yaml's seed
NEW = {"name": "cp-4", "site": "cloud", "roles": ["control-plane"], "vpnAddress": "100.64.0.6",
       "existing": {"address": "203.0.113.15", "publicAddress": "203.0.113.15", "lanAddress": "192.0.2.15"},
       "ssh": {"user": "ubuntu", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFmCorap9mIX4cvxlXk7CjNr5U3ff4K8g9CUUvC5MDeV"}}


def _render(raw: dict[str, object], out: Path) -> Path:
    """What one side of `make diff` writes (tools/render/snapshot.py), from a config."""
    ev = evaluate_config(raw)
    out.mkdir(parents=True)
    (out / "resources.json").write_text(json.dumps(records(ev, b"k", Secret, reveal), sort_keys=True))
    artifacts(ev, out / "artifacts")
    return out


def test_removing_a_lost_seed_deletes_only_its_own_steps_and_replaces_nothing(tmp_path: Path) -> None:
    before = stack_config("ha")
    after = copy.deepcopy(before)
    # The lost seed goes, a new control plane comes (in the same change: voters stay odd).
    after["hosts"] = [h for h in after["hosts"] if h["name"] != LOST] + [NEW]
    changes = compare(_render(before, tmp_path / "a"), _render(after, tmp_path / "b"))

    # No Kubernetes object (nor the provider) is replaced although the kubeconfig now comes
    # from cp-2: the provider's clusterIdentifier is unchanged.
    assert not changes.replace, changes.replace
    assert "cluster-kubeconfig" in {n for _, n, _ in changes.update}  # from cp-2 now
    # Deleted: the lost host's own steps only. A deleted join step runs `microk8s leave` on its
    # node, a deleted register step `remove-node` on the seed: none of another node.
    deleted = {name for _, name in changes.delete}
    assert deleted, "the lost host's steps must go"
    for name in deleted:
        assert (name == LOST or f"{LOST}-" in name) and "receipt-api" not in name, name
    for node in ("cp-2", "cp-3", "interface", "ws-1", "ws-2"):
        assert not {f"cluster-{node}-{step}" for step in ("microk8s", "register", "join", "ready")} & deleted
    # cp-2 is the seed now: its join re-runs against itself (a no-op: it is joined), and it
    # registers the others.
    updated = {name: lines for _, name, lines in changes.update}
    assert "cluster-cp-2-join" in updated
    ev = evaluate_config(after)
    assert split_command(ev.by_name("cluster-cp-2-join").inputs["create"])[1]["CONTROL_PLANE"] == "100.64.0.4"
    assert split_command(ev.by_name("cluster-cp-3-join").inputs["create"])[1]["CONTROL_PLANE"] == "100.64.0.4"
    created = {name for _, name in changes.create}
    assert {"cluster-cp-4-microk8s", "cluster-cp-4-register", "cluster-cp-4-join", "cluster-cp-4-ready"} <= created
