"""The NVIDIA driver roll in the plan: strictly serial over the GPU hosts that ask for it, each
drained, installed, checked and uncordoned; after the channel roll; inside one maintenance
window shared with it; and nothing of it in a plain `up`."""

from __future__ import annotations

import itertools
from typing import Any

from components.kit.shell import split_command
from tests.support.helpers import deps_closure, depth, evaluate_config, stack_config
from tools.render.evaluate import Evaluation

STEPS = ("drain", "install", "check", "uncordon")


def params(ev: Evaluation, name: str) -> dict[str, str]:
    return split_command(ev.by_name(name).inputs["create"])[1]


def driver_upgrading(stack: str = "dev", **upgrade: Any) -> Evaluation:
    """ws-1 and ws-2 roll from 535 to 550 (ws-2's driver made the program's own for it)."""
    raw = stack_config(stack)
    for h in raw["hosts"]:
        if h["name"] in ("ws-1", "ws-2"):
            h["nvidia"] = {"installDriver": True, "driverVersion": "550", "fromDriverVersion": "535"}
    if upgrade:
        raw["cluster"] = {**raw["cluster"], "upgrade": upgrade}
    return evaluate_config(raw)


def chain(ev: Evaluation, node: str) -> list[Any]:
    return [ev.by_name(f"cluster-{node}-driver-{step}") for step in STEPS]


def test_a_plain_up_has_no_driver_roll_step_and_keeps_its_depth() -> None:
    for stack in ("dev", "ha"):
        ev = evaluate_config(stack_config(stack))
        assert not [r for r in ev.resources if "-driver-" in r.name], stack
    # A new branch alone (no fromDriverVersion: a new host, or a roll not asked for) adds no step
    # either: the host's own set-up installs it on a fresh host and refuses to replace a working one.
    raw = stack_config("dev")
    raw["hosts"][3]["nvidia"] = {"driverVersion": "550"}
    changed = evaluate_config(raw)
    assert not [r for r in changed.resources if "-driver-" in r.name]
    assert depth(changed) == depth(evaluate_config(stack_config("dev")))
    assert params(changed, "ws-1-bootstrap-gpu-setup")["DRIVER_FROM"] == ""


def test_a_driver_roll_is_strictly_serial_each_gpu_host_drained_installed_rebooted_checked_and_back() -> None:
    ev = driver_upgrading()
    ws1, ws2 = chain(ev, "ws-1"), chain(ev, "ws-2")
    for steps in (ws1, ws2):
        for before, step in itertools.pairwise(steps):
            assert before.urn in step.dependencies, step.name
    assert ws1[3].urn in ws2[0].dependencies  # ws-2 starts once ws-1 is back
    assert ws2[3].urn not in deps_closure(ev, ws1[0].urn)
    assert not [r for r in ev.resources if r.name.startswith(("cluster-receipt-driver", "cluster-interface-driver"))]  # no GPU
    install, check = params(ev, "cluster-ws-1-driver-install"), params(ev, "cluster-ws-1-driver-check")
    assert (install["DRIVER_VERSION"], install["REPLACE_DRIVER"], install["INSTALL_TOOLKIT"]) == ("550", "true", "false")
    assert check["DRIVER_BRANCH"] == "550" and check["GPU_COUNT"] == "1"
    drain = params(ev, "cluster-ws-1-driver-drain")
    assert (drain["MARK"], drain["TARGET"], drain["WINDOW"]) == ("nvidia-driver", "550", "")
    # The set-up accepts the old branch while the roll is asked for; it is re-run, never the roll.
    assert params(ev, "ws-1-bootstrap-gpu-setup")["DRIVER_FROM"] == "535"
    plain = depth(evaluate_config(stack_config("dev")))
    assert plain + 4 * 2 < depth(ev) <= 2 * plain + 4 * 2


def test_max_unavailable_rolls_that_many_gpu_hosts_at_once() -> None:
    ev = driver_upgrading(maxUnavailable=2)
    ws1, ws2 = chain(ev, "ws-1"), chain(ev, "ws-2")
    assert ws1[3].urn not in deps_closure(ev, ws2[0].urn) and ws2[3].urn not in deps_closure(ev, ws1[0].urn)


def test_the_driver_roll_follows_the_channel_roll_and_kubernetes_waits_for_both() -> None:
    raw = stack_config("dev")
    raw["hosts"][3]["nvidia"] = {"driverVersion": "550", "fromDriverVersion": "535"}
    raw["cluster"] = {**raw["cluster"], "channel": "1.33/stable", "upgrade": {"fromChannel": "1.32/stable", "window": "Sat,Sun 02:00-06:00"}}
    ev = evaluate_config(raw)
    last_channel = ev.by_name("cluster-ws-2-upgrade-uncordon").urn
    drain, *_, back = chain(ev, "ws-1")
    assert last_channel in drain.dependencies
    provider = next(r for r in ev.resources if r.name == "cluster-k8s")
    assert back.urn in deps_closure(ev, provider.urn) and back.urn in deps_closure(ev, ev.by_name("cluster-verify-check").urn)
    assert params(ev, "cluster-receipt-upgrade-uncordon")["KUBELET_MINOR"] == "1.33"  # what the channel roll waits for
    assert params(ev, "cluster-ws-1-driver-uncordon")["KUBELET_MINOR"] == ""  # a driver roll waits for no kubelet version
    for name in ("cluster-ws-1-driver-drain", "cluster-receipt-upgrade-drain"):  # one window for both rolls
        assert (params(ev, name)["WINDOW"], params(ev, name)["WINDOW_DAYS"]) == ("Sat,Sun 02:00-06:00", "Sat Sun"), name


def test_a_paused_roll_has_no_roll_step_and_lets_the_kubernetes_work_go_ahead() -> None:
    """cluster.upgrade.paused (review 6 M2): outside the window the roll would stop every
    `up`; paused, neither roll has a step, the depth is a plain up's, and the nodes keep their
    old channel and driver, which their own steps accept while the roll is still asked for."""
    raw = stack_config("dev")
    raw["cluster"] = {**raw["cluster"], "channel": "1.33/stable", "upgrade": {"fromChannel": "1.32/stable", "paused": True}}
    for h in raw["hosts"]:
        if h["name"] == "ws-1":
            h["nvidia"] = {"driverVersion": "550", "fromDriverVersion": "535"}
    paused = evaluate_config(raw)
    assert not [r for r in paused.resources if "-driver-" in r.name or "-upgrade-" in r.name]
    assert depth(paused) == depth(evaluate_config(stack_config("dev")))
    assert params(paused, "ws-1-bootstrap-gpu-setup")["DRIVER_FROM"] == "535"
    assert params(paused, "cluster-ws-1-microk8s")["UPGRADE_FROM"] == "1.32/stable"
    raw["cluster"]["upgrade"]["paused"] = False
    assert [r for r in evaluate_config(raw).resources if "-driver-" in r.name]
