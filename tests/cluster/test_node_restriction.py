"""NodeRestriction on every control plane's API server, beside MicroK8s' own admission plugins
(default-args/kube-apiserver @ v1.32 enables only EventRateLimit beyond the defaults), under the
recording stubs."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.kit.shell import split_command
from stacks.load import validate
from tests.support.cluster_scripts import CP, WORKER
from tests.support.cluster_stubs import APISERVER_DEFAULT_ARGS, ClusterHost
from tests.support.helpers import evaluate_config, stack_config


def plugins(h: ClusterHost) -> list[str]:
    return [a for a in (h.snap_data / "args/kube-apiserver").read_text().splitlines() if a.startswith("--enable-admission-plugins=")]


def test_every_control_plane_enables_node_restriction_beside_microk8s_plugins(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    first = cp.run("microk8s-install.sh", **CP)
    assert first.returncode == 0, first.stderr
    assert plugins(cp) == ["--enable-admission-plugins=EventRateLimit,NodeRestriction"]
    args = (cp.snap_data / "args/kube-apiserver").read_text()
    assert "--admission-control-config-file=${SNAP_DATA}/args/admission-control-config-file.yaml" in args  # EventRateLimit's config stays
    assert "snap restart microk8s.daemon-kubelite" not in cp.state_changes()  # set by the launch configuration, at install
    again = cp.run("microk8s-install.sh", **CP)
    assert again.returncode == 0 and cp.state_changes() == []  # idempotent


def _set_plugins(h: ClusterHost, line: str | None) -> None:
    """The node's kube-apiserver args with its plugins line replaced (or removed), the rest as installed."""
    path = h.snap_data / "args/kube-apiserver"
    kept = [a for a in path.read_text().splitlines() if not a.startswith("--enable-admission-plugins=")]
    path.write_text("".join(f"{a}\n" for a in [*kept, *([line] if line else [])]))


def test_an_existing_control_plane_keeps_its_plugins_and_gains_node_restriction_once(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    _set_plugins(cp, '--enable-admission-plugins="EventRateLimit,AlwaysPullImages"')  # as installed before, plus one of its own
    result = cp.run("microk8s-install.sh", **CP)
    assert result.returncode == 0 and "node-restriction" in result.stdout
    assert plugins(cp) == ["--enable-admission-plugins=EventRateLimit,AlwaysPullImages,NodeRestriction"]
    assert "snap restart microk8s.daemon-kubelite" in cp.state_changes()
    _set_plugins(cp, "--enable-admission-plugins=NodeRestriction,EventRateLimit")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    assert plugins(cp) == ["--enable-admission-plugins=NodeRestriction,EventRateLimit"] and cp.state_changes() == []


def test_a_control_plane_without_the_flag_gets_node_restriction_alone(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    _set_plugins(cp, None)
    assert cp.run("microk8s-install.sh", **CP).returncode == 0
    assert plugins(cp) == ["--enable-admission-plugins=NodeRestriction"]


def test_workers_run_no_api_server_and_keep_its_args(tmp_path: Path) -> None:
    ws = ClusterHost(tmp_path / "ws", "ws-1", "100.64.1.1")
    assert ws.run("microk8s-install.sh", **WORKER).returncode == 0
    assert (ws.snap_data / "args/kube-apiserver").read_text() == APISERVER_DEFAULT_ARGS


def test_every_control_plane_of_the_plan_installs_with_node_restriction() -> None:
    ev = evaluate_config(stack_config("ha"))
    cfg = validate(stack_config("ha"))
    planes = {h.name for h in cfg.hosts if "control-plane" in h.roles}
    assert len(planes) == 3
    for h in (h for h in cfg.hosts if h.in_cluster):
        launch = yaml.safe_load(split_command(ev.by_name(f"cluster-{h.name}-microk8s").inputs["create"])[1]["LAUNCH_CONFIG"])
        api = launch.get("extraKubeAPIServerArgs") or {}
        assert (api.get("--enable-admission-plugins") == "EventRateLimit,NodeRestriction") == (h.name in planes), h.name
