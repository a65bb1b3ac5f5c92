"""The program's node taints under the recording stubs: added one by one with `kubectl taint`
(never an apply of the atomic list), the node's other taints (the node lifecycle controller's)
left alone, removed the same way."""

from __future__ import annotations

from pathlib import Path

from components.kit.shell import split_command
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import deps_closure, evaluate_config, stack_config, taint_gpu_host

OURS = "example.com/gpu=true:NoSchedule example.com/pool=:NoExecute"
CONTROLLER = "node.kubernetes.io/unreachable=:NoExecute"


def control_plane(tmp_path: Path, *taints: str) -> ClusterHost:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    (cp.state / "taints").mkdir()
    (cp.state / "taints" / "ws-1").write_text("".join(f"{t}\n" for t in taints))
    return cp


def taints(cp: ClusterHost) -> set[str]:
    return set((cp.state / "taints" / "ws-1").read_text().split())


def test_the_programs_taints_are_added_one_by_one_and_the_controllers_stay(tmp_path: Path) -> None:
    cp = control_plane(tmp_path, CONTROLLER)
    result = cp.run("microk8s-taint.sh", NODE_NAME="ws-1", TAINTS=OURS)
    assert result.returncode == 0, result.stderr
    assert taints(cp) == {CONTROLLER, *OURS.split()}
    assert [c for c in cp.state_changes() if "taint" in c] == [
        "microk8s kubectl taint node ws-1 example.com/gpu=true:NoSchedule --overwrite",
        "microk8s kubectl taint node ws-1 example.com/pool:NoExecute --overwrite",
    ]
    again = cp.run("microk8s-taint.sh", NODE_NAME="ws-1", TAINTS=OURS)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none"
    assert not [c for c in cp.state_changes() if "kubectl taint" in c]


def test_a_taint_of_ours_with_another_value_is_set_to_ours(tmp_path: Path) -> None:
    cp = control_plane(tmp_path, "example.com/gpu=false:NoSchedule")
    assert cp.run("microk8s-taint.sh", NODE_NAME="ws-1", TAINTS=OURS).returncode == 0
    assert taints(cp) == set(OURS.split())


def test_untaint_removes_exactly_ours_and_a_missing_node_or_taint_is_no_error(tmp_path: Path) -> None:
    cp = control_plane(tmp_path, CONTROLLER, "example.com/gpu=true:NoSchedule")  # example.com/pool already gone
    result = cp.run("microk8s-untaint.sh", NODE_NAME="ws-1", TAINTS=OURS)
    assert result.returncode == 0, result.stderr
    assert taints(cp) == {CONTROLLER}
    assert [c for c in cp.state_changes() if "taint" in c] == ["microk8s kubectl taint node ws-1 example.com/gpu:NoSchedule-"]
    assert cp.run("microk8s-untaint.sh", NODE_NAME="ws-9", TAINTS=OURS).returncode == 0


def test_taint_fails_naming_the_node_when_the_api_cannot_be_read(tmp_path: Path) -> None:
    cp = control_plane(tmp_path)
    result = cp.run("microk8s-taint.sh", NODE_NAME="ws-9", TAINTS=OURS, RETRY_ATTEMPTS="1")
    assert result.returncode == 1 and "cannot read the taints of node ws-9" in result.stderr


def test_node_patches_apply_labels_only_and_the_programs_taints_go_one_by_one() -> None:
    """spec.taints is an atomic list under server-side apply (k8s.io/api core/v1 NodeSpec.Taints,
    `+listType=atomic`, 1.32): any list applied, `[]` included, would claim the node's every taint,
    the node lifecycle controller's too. So the patch carries no spec, and a node with taints of
    the program's gets them by `kubectl taint` from the control plane, removed the same way."""
    raw = stack_config("dev")
    taint_gpu_host(raw, "ws-1", [{"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"},
                                 {"key": "example.com/pool", "value": "", "effect": "NoExecute"}])
    ev = evaluate_config(raw)
    patches = [r for r in ev.resources if r.type == "kubernetes:core/v1:NodePatch"]
    assert {r.name for r in patches} == {"cluster-receipt-labels", "cluster-interface-labels", "cluster-ws-1-labels", "cluster-ws-2-labels"}
    for patch in patches:
        assert set(patch.inputs) <= {"metadata", "apiVersion", "kind"}, f"{patch.name} applies more than labels: {sorted(patch.inputs)}"
        assert set(patch.inputs["metadata"]) == {"name", "labels"}
    taints = ev.by_name("cluster-ws-1-taints")
    assert split_command(taints.inputs["create"])[1] == {"NODE_NAME": "ws-1", "TAINTS": "example.com/gpu=true:NoSchedule example.com/pool=:NoExecute"}
    assert "microk8s-taint.sh" in taints.inputs["create"] and "microk8s-untaint.sh" in taints.inputs["delete"]
    assert split_command(taints.inputs["delete"])[1] == split_command(taints.inputs["create"])[1]
    assert taints.inputs["triggers"] == ["example.com/gpu=true:NoSchedule example.com/pool=:NoExecute"]  # a new set replaces it
    assert ev.by_name("cluster-ws-1-labels").urn in deps_closure(ev, taints.urn)
    assert "cluster-receipt-taints" not in {r.name for r in ev.resources}  # no taints of ours: no step, nothing sent
