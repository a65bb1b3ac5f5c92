"""The join window in the plan: a node's join token and its cluster-agent access end whether or
not its join step succeeds (components/cluster/scripts/microk8s-node-ready.sh)."""

from __future__ import annotations

from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tools.render.evaluate import Secret


def test_the_join_window_closes_whether_or_not_the_join_step_succeeds() -> None:
    """The token and the node's cluster-agent access are revoked by a step beside the join (on
    the register step only): a join step the node fails does not keep them until the TTL."""
    ev = evaluate_config(stack_config("dev"))
    for node in ("interface", "ws-1", "ws-2"):
        window, join = ev.by_name(f"cluster-{node}-join-window"), ev.by_name(f"cluster-{node}-join")
        depends = {r.name for r in ev.resources if r.urn in deps_closure(ev, window.urn)}
        assert f"cluster-{node}-register" in depends and f"cluster-{node}-join" not in depends
        assert "microk8s-node-ready.sh" in window.inputs["create"] and "delete" not in window.inputs
        assert isinstance(window.inputs["stdin"], Secret) and window.inputs["stdin"].value == join.inputs["stdin"].value
