"""The rolling-upgrade steps under stubs: drain on the seed, refresh on the node, wait Ready
and uncordon; a failure stops the roll naming the node; a re-run changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from components.cluster.upgrade import refreshed_at as upgrade_refreshed_at
from tests.support.cluster_scripts import CP, WORKER
from tests.support.cluster_stubs import ClusterHost

# The channel roll's parameters of its drain and uncordon steps (and the refresh's CHANNEL).
ROLL_133 = {"MARK": "channel", "TARGET": "1.33/stable", "ROLL": "MicroK8s upgrade to 1.33/stable", "KUBELET_MINOR": "1.33", "CHANNEL": "1.33/stable"}


def refreshed_at(stdout: str) -> str:
    found = re.search(r"^refreshed_at=([0-9]+)$", stdout, re.M)
    assert found, stdout
    return found.group(1)


def upgrade_pair(tmp_path: Path) -> tuple[ClusterHost, ClusterHost]:
    """The seed control plane (kubectl) and a worker on 1.32/stable, both installed."""
    cp, ws = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2"), ClusterHost(tmp_path / "ws")
    assert cp.run("microk8s-install.sh", **CP).returncode == 0 and ws.run("microk8s-install.sh", **WORKER).returncode == 0
    cp.add_node("ws-1", "100.64.1.1")
    return cp, ws


def test_an_upgrade_drains_refreshes_waits_ready_and_uncordons_then_does_nothing(tmp_path: Path) -> None:
    cp, ws = upgrade_pair(tmp_path)
    up = {"NODE_NAME": "ws-1", **ROLL_133}
    drain = cp.run("microk8s-upgrade-drain.sh", **up, DRAIN_TIMEOUT_S="120")
    assert drain.returncode == 0, drain.stderr
    assert cp.state_changes() == ["microk8s kubectl annotate --overwrite node ws-1 hybrid-ai/upgrade-cordoned=true",
                                  "microk8s kubectl drain ws-1 --ignore-daemonsets --delete-emptydir-data --timeout=120s"]
    refresh = ws.run("microk8s-upgrade-refresh.sh", HOST_NAME="ws-1", CHANNEL="1.33/stable")
    assert refresh.returncode == 0 and ws.state_changes() == ["snap refresh microk8s --channel=1.33/stable"]
    since = refreshed_at(refresh.stdout)
    cp.kubelet_posts("ws-1", "v1.33.0", rfc3339(int(since) + 3))  # the refreshed kubelet is back
    back = cp.run("microk8s-upgrade-uncordon.sh", **up, WAIT_S="10", SINCE=since)
    assert back.returncode == 0, back.stderr
    assert cp.state_changes() == ["microk8s kubectl uncordon ws-1", "microk8s kubectl annotate node ws-1 hybrid-ai/upgrade-cordoned-",
                                  "microk8s kubectl annotate --overwrite node ws-1 hybrid-ai/channel=1.33/stable"]
    assert not (cp.state / "cordoned" / "ws-1").exists()
    # Run again (a later `up` during the same roll): nothing changes anywhere.
    for host, script in ((cp, "microk8s-upgrade-drain.sh"), (ws, "microk8s-upgrade-refresh.sh"), (cp, "microk8s-upgrade-uncordon.sh")):
        again = host.run(script, **up, HOST_NAME="ws-1")
        assert again.returncode == 0 and host.state_changes() == [] and again.stdout.splitlines()[-1] == "changed=none", script


def test_a_drain_a_disruption_budget_blocks_stops_the_roll_naming_the_node_and_leaves_it_cordoned(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "pdb-blocks").touch()
    result = cp.run("microk8s-upgrade-drain.sh", NODE_NAME="ws-1", **ROLL_133, DRAIN_TIMEOUT_S="60")
    assert result.returncode == 1
    assert "upgrade to 1.33/stable stopped at ws-1: drain failed or did not finish within 60s (a PodDisruptionBudget, or a pod no controller manages" in result.stderr
    assert (cp.state / "cordoned" / "ws-1").exists()  # as kubectl leaves it: cordoned first


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_worker_whose_refreshed_kubelet_has_not_posted_yet_is_not_back(tmp_path: Path) -> None:
    """Review 4 #3: on a worker `microk8s status --wait-ready` returns at once (status wrapper
    @ v1.32), and Ready stays True from before the refresh: the uncordon step waits for the new
    kubelet's own post (version and heartbeat), bounded, and stops the roll naming the node."""
    cp, ws = upgrade_pair(tmp_path)
    (ws.snap_data / "var" / "lock" / "clustered.lock").touch()  # joined with --worker, as join.py marks it
    refresh = ws.run("microk8s-upgrade-refresh.sh", HOST_NAME="ws-1", CHANNEL="1.33/stable")
    assert refresh.returncode == 0  # the wrapper returned at once on the worker, as upstream's does
    since = int(refreshed_at(refresh.stdout))
    assert since > 0
    up = {"NODE_NAME": "ws-1", **ROLL_133, "WAIT_S": "5", "SINCE": str(since)}
    stale = cp.run("microk8s-upgrade-uncordon.sh", **up)  # Ready True, but the old kubelet's post
    assert stale.returncode == 1 and "upgrade to 1.33/stable stopped at ws-1: not Ready on v1.33" in stale.stderr
    cp.kubelet_posts("ws-1", "v1.33.0", rfc3339(since - 60))  # a version but a heartbeat from before the refresh
    assert cp.run("microk8s-upgrade-uncordon.sh", **up).returncode == 1
    assert cp.state_changes() == []
    cp.kubelet_posts("ws-1", "v1.33.0", rfc3339(since + 5))
    assert cp.run("microk8s-upgrade-uncordon.sh", **up).returncode == 0


def test_the_refresh_time_is_read_from_the_refresh_step() -> None:
    assert upgrade_refreshed_at("refreshed_at=1767225600\nchanged=refreshed\n") == "1767225600"
    assert upgrade_refreshed_at("changed=none\n") == "0"


def test_an_operator_cordoned_node_stays_cordoned_after_its_upgrade(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "cordoned").mkdir()
    (cp.state / "cordoned" / "ws-1").touch()
    cp.kubelet_posts("ws-1", "v1.33.0", rfc3339(1767225600))
    up = {"NODE_NAME": "ws-1", **ROLL_133}
    assert cp.run("microk8s-upgrade-drain.sh", **up).returncode == 0
    assert cp.run("microk8s-upgrade-uncordon.sh", **up, WAIT_S="10").returncode == 0
    assert (cp.state / "cordoned" / "ws-1").exists()
    assert "microk8s kubectl uncordon ws-1" not in cp.state_changes()


def test_a_node_not_ready_after_its_refresh_stops_the_roll_naming_it(tmp_path: Path) -> None:
    cp, _ = upgrade_pair(tmp_path)
    (cp.state / "not-ready").mkdir()
    (cp.state / "not-ready" / "ws-1").touch()
    result = cp.run("microk8s-upgrade-uncordon.sh", NODE_NAME="ws-1", **ROLL_133, WAIT_S="5")
    assert result.returncode == 1 and "upgrade to 1.33/stable stopped at ws-1: not Ready" in result.stderr
    assert cp.state_changes() == []
