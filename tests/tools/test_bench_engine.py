"""`make bench`'s own logic without the engine: the stacks it generates (the lab's with more
workstations, the large fleets), the schema of build/bench.json, its goals, the table
docs/performance.md shows, and the graph fact the 6- and 12-host timings rest on."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.bench_driver import machine_cpu_s
from tests.support.bench_lab import bench_config
from tests.support.cluster_lab import ClusterLab
from tests.support.engine_lab import OFFICE, lab_hosts
from tests.support.helpers import PROJECT, evaluate_config
from tools import bench_report
from tools.bench_fleet import SHAPES, host_key, office_fleet, office_lans, write_stack_file
from tools.bench_report import Bench, busy, critical_path, figures, goals, owner, parallel_hosts, table, with_table
from tools.render.evaluate import raw_stack_config


def unbuilt_lab(root: Path, workstations: int) -> ClusterLab:
    """The engine lab with `workstations` workstations, not brought up: addresses as the lab
    gives them, host keys made up."""
    cluster = ClusterLab(root, workstations)
    for h in cluster.lab.hosts.values():
        h.host_key = host_key(h.name)
    return cluster


def test_the_lab_stacks_are_the_engine_labs_own_with_more_workstations(tmp_path: Path) -> None:
    """The bench's lab is the engine lab built by its own host builder with the workstations the
    largest stack needs, and a stack of k workstations is the config the engine lab makes with k."""
    cluster = unbuilt_lab(tmp_path / "lab", 10)
    assert [h.name for h in cluster.lab.hosts.values()] == [h.name for h in lab_hosts(10)]
    for k in (2, 3, 4, 9):
        assert bench_config(cluster, k) == unbuilt_lab(tmp_path / f"lab{k}", k).config(), k
    small, large = bench_config(cluster, 3), bench_config(cluster, 9)
    assert (len(small["hosts"]), len(bench_config(cluster, 4)["hosts"]), len(large["hosts"])) == (6, 7, 12)
    assert large["sources"] == cluster.config()["sources"] and large["models"] == cluster.config()["models"]
    hosts = {h["name"]: h for h in large["hosts"]}
    assert {h["ssh"]["hostKey"] for h in hosts.values()} == {cluster.lab.hosts[n].host_key for n in hosts}
    assert len({h["vpnAddress"] for h in hosts.values()}) == 12
    for k in range(1, 10):
        ws, host = hosts[f"ws-{k}"], cluster.lab.hosts[f"ws-{k}"]
        assert ws["gpu"] and ws["site"] == OFFICE.name and ws["existing"]["lanAddress"] == host.lan
        assert host.lan and ipaddress.ip_address(host.lan) in ipaddress.ip_network(OFFICE.lan_cidr)
        if k > 1:  # through ws-1, dialed at its LAN address (its sshd listens there)
            assert ws["ssh"]["jumpHost"] == "ws-1" and ws["existing"]["address"] == host.lan
            assert host.sshd_options == {"ListenAddress": "0.0.0.0"}
        else:
            assert "jumpHost" not in ws["ssh"] and ws["existing"]["address"] == host.mgmt
    assert len({h.mgmt for h in cluster.lab.hosts.values()}) == len({h.lan or h.public for h in cluster.lab.hosts.values()}) == 13
    with pytest.raises(ValueError, match="fewer than 11 workstations"):
        bench_config(cluster, 11)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_fleet_shapes(shape: str) -> None:
    workstations, models, site_size = SHAPES[shape]
    raw = office_fleet(workstations, models, site_size)
    ws = [h for h in raw["hosts"] if "gpu" in h]
    offices = [s for s in raw["sites"] if s["kind"] == "on-prem"]
    assert (len(ws), len(raw["models"]), len(offices)) == (100, 40, 100 // site_size)
    assert len({h["name"] for h in raw["hosts"]}) == len({h["ssh"]["hostKey"] for h in raw["hosts"]}) == len(raw["hosts"])
    assert len({h["vpnAddress"] for h in raw["hosts"]}) == len(raw["hosts"])
    lans = {s["name"]: ipaddress.IPv4Network(s["lanCidr"]) for s in offices}
    assert all(lan.subnet_of(ipaddress.IPv4Network("198.51.100.0/24")) for lan in lans.values())
    for h in ws:
        lan = lans[h["site"]]
        address = ipaddress.ip_address(h["existing"]["address"])
        assert address in lan and address not in (lan.network_address, lan.network_address + 1, lan.broadcast_address)
        first = f"ws-{h['site'].removeprefix('office-')}-1"
        assert h["ssh"].get("jumpHost") == (None if h["name"] == first else first)
    assert {h.get("nvidia", {}).get("installDriver", True) for h in ws} == {True, False}


def test_office_lans_must_fit() -> None:
    assert [str(n) for n in office_lans(2, 10)] == ["198.51.100.0/28", "198.51.100.16/28"]
    assert [str(n) for n in office_lans(1, 100)] == ["198.51.100.0/25"]
    with pytest.raises(ValueError, match="17 offices of 10"):
        office_lans(17, 10)
    with pytest.raises(ValueError, match="1 offices of 300"):
        office_lans(1, 300)


def test_a_small_fleet_is_a_valid_stack_file_make_render_reads(tmp_path: Path) -> None:
    raw = office_fleet(5, 6, 2)
    write_stack_file(raw, tmp_path, "bench-small")
    assert raw_stack_config(tmp_path, "bench-small") == raw
    ev = evaluate_config(raw)
    assert ev.by_name("ws-3-1-reachable") and not ev.warnings


def cross_host_edges(raw: dict[str, Any]) -> set[tuple[str, str]]:
    ev = evaluate_config(raw)
    hosts = [h["name"] for h in raw["hosts"]]
    names = {r.urn: r.name for r in ev.resources}
    return {(r.name, names[d]) for r in ev.resources for d in r.dependencies
            if (a := owner(r.urn, hosts)) and (b := owner(d, hosts)) and a != b}


def test_hosts_wait_for_each_other_only_where_they_must() -> None:
    """Hosts run in parallel: no step of one host waits for another host's, except a host's
    steps for its jump host's reachability check (its connection goes through it), each mesh
    config for its peers' key steps (it lists their public keys), and a node's cluster steps that
    run on the control plane (its registration, join window and readiness check) for the
    control plane's own steps (MicroK8s installed there, over the VPN). No node's cluster steps
    wait on another node's: the joins run side by side."""
    raw = office_fleet(6, 5, 3)
    jump = {h["name"]: h["ssh"].get("jumpHost") for h in raw["hosts"]}
    (plane,) = (h["name"] for h in raw["hosts"] if "control-plane" in h["roles"])
    on_plane = ("-register", "-join-window", "-ready")
    edges = cross_host_edges(raw)
    needless = {(a, b) for a, b in edges
                if not (a.startswith("mesh-") and a.endswith("-wg") and b.startswith("mesh-") and b.endswith("-wg-key"))
                and not any(a.startswith((f"{h}-", f"mesh-{h}-", f"cluster-{h}-")) for h, j in jump.items() if j and b == f"{j}-reachable")
                and not (a.startswith("cluster-") and a.endswith(on_plane) and b.startswith((f"{plane}-", f"mesh-{plane}-", f"cluster-{plane}-")))}
    assert not needless, sorted(needless)
    hosts = [h["name"] for h in raw["hosts"]]
    # Still there: the hub's config lists every peer, every peer's lists the hub; every node's
    # registration runs once MicroK8s runs on the control plane.
    assert {("mesh-vpn-hub-wg", f"mesh-{h}-wg-key") for h in hosts if h != "vpn-hub"} <= edges
    assert {(f"mesh-{h}-wg", "mesh-vpn-hub-wg-key") for h in hosts if h != "vpn-hub"} <= edges
    assert ("ws-1-2-bootstrap-base", "ws-1-1-reachable") in edges
    assert {(f"cluster-{h}-register", f"cluster-{plane}-microk8s") for h in hosts if h not in (plane, "vpn-hub")} <= edges


def test_host_parallelism_from_the_engines_steps() -> None:
    assert owner("urn:pulumi:s::p::command:remote:Command::ws-1-bootstrap-base", ["ws-1", "ws-10"]) == "ws-1"
    assert owner("urn:pulumi:s::p::command:remote:Command::mesh-ws-10-wg", ["ws-1", "ws-10"]) == "ws-10"
    assert owner("urn:pulumi:s::p::command:remote:Command::cluster-ws-10-join", ["ws-1", "ws-10"]) == "ws-10"
    assert owner("urn:pulumi:s::p::hybridai:vpn:WireGuardMesh::mesh", ["ws-1"]) is None
    # Only the host commands: a model named after a host is no host's step.
    assert owner("urn:pulumi:s::p::kubernetes:apps/v1:Deployment::receipt-api-deployment", ["receipt"]) is None
    assert busy([(0, 2), (1, 3), (5, 6)]) == 4
    u = "urn:pulumi:s::p::command:remote:Command::"
    serial = [[u + "a-x", "create", 0, 5], [u + "b-x", "create", 5, 10]]
    parallel = [[u + "a-x", "create", 0, 5], [u + "a-y", "create", 4, 10], [u + "b-x", "create", 0, 10]]
    assert parallel_hosts(serial, ["a", "b"], 10) == 1.0 and parallel_hosts(parallel, ["a", "b"], 10) == 2.0


def test_the_critical_path_follows_the_dependencies_not_the_clock() -> None:
    u = "urn:pulumi:s::p::command:remote:Command::"
    steps = [[u + "a", "create", 0, 2], [u + "b", "create", 5, 8], [u + "c", "create", 0, 1], [u + "d", "create", 9, 10]]
    component = "urn:pulumi:s::p::hybridai:host:Bootstrap::k"
    waits = {u + "a": [], u + "b": [component], f"component:{component}": [u + "a"], u + "c": [],
             u + "d": [u + "b", u + "c", u + "unchanged"]}
    # a, (k), b, d: 2 + 0 + 3 + 1, not the 10 s the steps spanned; the component's span counts for nothing
    assert critical_path([*steps, [component, "create", 0, 10]], waits) == 6
    assert critical_path(steps, {key: [] for key in waits}) == 3  # nothing waits: the longest step
    gone = [[u + "x", "delete", 3, 4], [u + "y", "delete", 0, 3], [u + "z", "delete", 0, 1]]
    assert critical_path(gone, {u + "x": [], u + "y": [u + "x"], u + "z": []}) == 4  # x goes after y, which depends on it
    through = {u + "x": [component], f"component:{component}": [u + "y"], u + "y": []}  # y after the component, after x
    assert critical_path([*gone, [component, "delete", 0, 9]], through) == 4


def record(**changes: Any) -> dict[str, Any]:
    step = {"s": 10.0, "hosts": 6, "resources": 50, "changes": {"create": 50}, "parallel_hosts": 4.0,
            "engine_cpu_s": 5.0, "hosts_cpu_s": 3.0}
    lab = {k: step for k in ("up_small", "again_small", "add_workstation", "destroy_small", "up_large", "again_large", "destroy_large")}
    fleet = {"shape": "10x10", "workstations": 100, "models": 40, "offices": 10, "resources": 1700, "preview_s": 30.0, "render_s": 10.0,
             "preview_cpu_s": 40.0, "render_cpu_s": 9.0}
    base = {"date": "2026-12-07T14:00:00+00:00", "cpus": 2, "load": [1, 2, 3], "load_end": [1, 2, 3], "nice": 10, "cli": "v3",
            "lab": lab | {"layers": "below-cluster"}, "fleet": [fleet]}
    return base | changes


def test_the_record_schema_and_goals() -> None:
    bench = Bench.model_validate(record())
    lab = bench.lab.model_dump()
    lab["up_large"] = dict(lab["up_large"], s=12.0)
    lab["again_small"] = dict(lab["again_small"], s=1.01)
    found = {g.name: g for g in goals(Bench.model_validate(record(lab=lab)))}
    assert found["up: 12 hosts / 6 hosts"].met and found["up: 12 hosts / 6 hosts"].value == 1.2
    assert not found["second up / first up (6 hosts)"].met and found["second up / first up (6 hosts)"].value == 0.101
    assert not found["second up / first up (12 hosts)"].met  # 10 / 12
    assert found["preview / render (10x10)"].met and found["preview / render (10x10)"].value == 3.0
    assert "critical paths" not in dict(figures(bench))  # not measured: not shown
    lab["up_small"] = dict(lab["up_small"], critical_path_s=5.0)
    lab["up_large"] = dict(lab["up_large"], critical_path_s=6.0)
    lab["again_large"] = dict(lab["again_large"], engine_cpu_s=1.0)
    shown = dict(figures(Bench.model_validate(record(lab=lab))))
    assert shown["up: 12 hosts / 6 hosts, critical paths"] == 1.2 and shown["second up / first up (12 hosts), engine CPU"] == 0.2
    assert "critical paths" in table(Bench.model_validate(record(lab=lab)))
    floor = "up: 12 hosts / 6 hosts, the least this machine's CPUs allow"
    assert floor not in shown  # the machine's CPU not measured: not shown
    # The 12-host up's machine CPU over the CPUs, unless its critical path is longer; over the 6-host up.
    lab["up_large"] = dict(lab["up_large"], machine_cpu_s=2 * 7.5)
    assert dict(figures(Bench.model_validate(record(lab=lab, cpus=2))))[floor] == 0.75  # 7.5 s / 10 s
    lab["up_large"] = dict(lab["up_large"], machine_cpu_s=2 * 4.0)
    assert dict(figures(Bench.model_validate(record(lab=lab, cpus=2))))[floor] == 0.6  # the critical path, 6 s / 10 s
    unsaved = "up: 12 hosts / 6 hosts, the CLI's checkpoints off"
    assert unsaved not in dict(figures(bench)) and "checkpoints off" not in table(bench)  # not measured: not shown
    off = dict(lab, up_small_unsaved=dict(lab["up_small"], s=8.0), up_large_unsaved=dict(lab["up_large"], s=10.0))
    assert dict(figures(Bench.model_validate(record(lab=off))))[unsaved] == 1.25
    assert table(Bench.model_validate(record(lab=off))).count("| up, the CLI's checkpoints off |") == 2
    too_busy = dict(lab, up_small=dict(lab["up_small"], machine_cpu_s=10.0 * 2 + 1))  # more than 2 CPUs give in 10 s
    for bad in (record(extra=1), record(load=[1, 2]), record(fleet=[]), record(lab=dict(lab, up_small=dict(lab["up_small"], s=0))),
                record(lab=too_busy, cpus=2), record(lab=dict(off, up_large_unsaved=dict(lab["up_large"], machine_cpu_s=30.0)), cpus=2)):
        with pytest.raises(ValidationError):
            Bench.model_validate(bad)


def test_machine_cpu_is_procs_busy_time_less_idle_iowait_and_steal() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice, in clock ticks
    stat = "cpu  1000 20 300 5000 400 6 7 80 900 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n"
    assert machine_cpu_s(stat) == (1000 + 20 + 300 + 6 + 7) / os.sysconf("SC_CLK_TCK")


def test_performance_md_shows_the_recorded_run() -> None:
    """docs/performance.md's table is the one docs/bench.json (the latest `make bench`) makes,
    and the goals recorded there are the ones its figures give."""
    bench = bench_report.load(bench_report.RECORD)
    assert bench.goals == goals(bench)
    page = bench_report.DOCS.read_text()
    assert with_table(page, bench) == page
    assert table(bench) in page and all(g.name in page for g in bench.goals)
    assert json.loads(bench_report.RECORD.read_text())["lab"]["up_large"]["hosts"] == 12


def test_both_fleet_clocks_include_the_process_start_and_the_programs_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`render_s` is a fresh process's wall time, import included; `preview_s` adds the preview
    driver's time up to its imports done (its process's age: a start that waited counts) to the
    operation's own."""
    code = "import time; time.sleep(0.6); from tests.support.bench_driver import process_age_s; print(process_age_s())"
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT).stdout)
    assert 0.6 <= age < 30
    from tests.support import bench

    def timed(argv: list[str], nice: int, stdin: str | None = None, timeout: float = 0) -> tuple[float, float, str]:
        if argv[2] == "tools.render":
            return 2.0, 1.0, ""
        out = {"ok": True, "changes": {"create": 10}, "elapsed": 3.0, "import_s": 1.5, "steps": []}
        return 9.0, 5.0, json.dumps(out)
    monkeypatch.setattr(bench, "timed", timed)
    monkeypatch.setitem(SHAPES, "tiny", (2, 1, 2))  # the dict bench.fleet_run reads
    run, _ = bench.fleet_run("tiny", 10, tmp_path)
    assert (run.preview_s, run.render_s) == (4.5, 2.0)
