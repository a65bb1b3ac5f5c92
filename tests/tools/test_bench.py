"""`make bench-render` runs, at the smallest size; timing thresholds are not tests, the shape and the
graph facts are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import PROJECT
from tools import floor, scratch


def test_bench_runs_at_the_reference_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "tools.bench", "--sizes", "reference", "--runs", "1", "--out", str(out)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report) >= {"import_s", "runs", "rerender_identical", "add_model_changed", "add_workstation_changed", "scratch"}
    # Where the renders went (the choice itself: test_renders_go_to_memory_only_on_a_tmpfs_with_room;
    # re-checking /dev/shm here could race other tests filling or freeing it).
    assert report["scratch"] in {"memory", "disk"}
    (run,) = report["runs"]
    assert (run["workstations"], run["models"]) == (2, 5)
    assert run["resources"] > 100 and run["depth"] > 5
    # Import and render times come from the same process: the render's own import can never
    # exceed its wall time, whereas an import timed in another process (report["import_s"]) can
    # take longer than this whole run when the CPU is shared (it did, 1 run in 6).
    assert run["wall_s"] > run["import_s"] > 0 and report["import_s"] > 0
    assert run["render_s"] > 0 and abs(run["render_s"] - (run["wall_s"] - run["import_s"])) < 0.002
    # The floor of the plan it rendered, from another fresh process; the ratio is render over floor.
    # Each figure is rounded to 3 decimals: allow exactly that rounding's effect on the quotient
    # (a small floor at the reference size makes it larger than any fixed tolerance).
    quotient = run["render_s"] / run["floor_s"]
    rounding = quotient * (0.0005 / run["render_s"] + 0.0005 / run["floor_s"]) + 0.0005
    assert run["floor_s"] > 0 and abs(run["ratio"] - quotient) <= rounding * 1.01
    assert run["cpu_ratio"] > 0
    assert abs(run["excess_s"] - (run["render_s"] - run["floor_s"])) < 0.002
    # The same-gc floor is another process with the program's collector settings; its ratio is
    # render over it, like the main one.
    assert run["floor_same_gc_s"] > 0
    tuned = run["render_s"] / run["floor_same_gc_s"]
    assert abs(run["ratio_same_gc"] - tuned) <= tuned * (0.0005 / run["render_s"] + 0.0005 / run["floor_same_gc_s"]) * 1.01 + 0.0006
    # One run: its spread is itself; the evaluation and the writing are parts of the render.
    assert run["ratio_min"] == run["ratio"] == run["ratio_max"] and abs(run["ratio_best"] - run["ratio"]) < 0.002
    assert 0 < run["eval_ratio"] <= run["ratio"] + 0.001 and 0 < run["write_s"] < run["render_s"]
    assert report["rerender_identical"] is True
    assert report["add_model_changed"] == 0
    # A third workstation in the office: only the mesh configs of the peers that must learn it,
    # and the list of the cluster's hosts (components/cluster/known_nodes.py).
    assert report["add_workstation_changed_names"] == [
        "cluster-known-nodes", "mesh-interface-wg", "mesh-receipt-wg", "mesh-vpn-hub-wg", "mesh-ws-1-wg", "mesh-ws-2-wg",
    ]
    assert "reference" in result.stdout and "ratio" in result.stdout


def test_floor_replays_the_same_resources_inputs_and_edges() -> None:
    """The floor registers what the plan holds, nothing less: same URNs, types, parents,
    dependency edges (provider included), custom timeouts, and inputs, secret ones with their
    values and still secret."""
    from tests.support.helpers import evaluate_config, stack_config
    from tools.render import mockrun
    from tools.render.evaluate import PROJECT as NAME
    from tools.render.evaluate import Evaluation, RecordingMonitor, Secret
    from tools.render.mocks import StackMocks
    from tools.render.write import redact

    ev = evaluate_config(stack_config("dev"), stack="bench")
    resources = json.loads(json.dumps(floor.replay_of(ev)))
    assert any(r["provider"] for r in resources) and any(r.inputs != redact(r.inputs) for r in ev.resources)
    replayed = Evaluation("bench")
    mocks = StackMocks(replayed)

    async def program() -> None:
        floor.replay(resources)

    mockrun.run(program, mocks, project=NAME, stack="bench", monitor=RecordingMonitor(mocks))

    def shape(e: Evaluation) -> list[tuple[Any, ...]]:
        # replay_of keeps each secret's value beside its marker: the comparison sees both.
        return sorted((r["urn"], r["type"], r["parent"], r["custom"], r["provider"], r["dependencies"],
                       json.dumps(r["inputs"], sort_keys=True), json.dumps(r["timeouts"], sort_keys=True)) for r in floor.replay_of(e))

    assert len(replayed.resources) == len(ev.resources) > 100
    assert shape(replayed) == shape(ev)
    # Secret connections (dicts) are replayed whole, not as a stand-in.
    connections = [r.inputs["connection"] for r in replayed.resources if r.type == "command:remote:Command"]
    assert connections and all(isinstance(c, Secret) and isinstance(c.value, dict) and c.value.get("host") for c in connections)
    assert any(r.timeouts for r in replayed.resources)


def _planned(urn_tail: str, type_: str, *, parent: str | None = None, custom: bool = True, provider: str | None = None,
             timeouts: dict[str, str] | None = None, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One resource as replay_of records it, in stack "bench"."""
    return {"urn": f"urn:pulumi:bench::hybrid-ai::{urn_tail}", "type": type_, "name": urn_tail.rsplit("::", 1)[-1],
            "parent": parent, "custom": custom, "provider": provider, "dependencies": [], "remote": False,
            "timeouts": timeouts or {}, "inputs": inputs or {}}


@pytest.mark.parametrize("same_gc", [False, True])
def test_the_floor_starts_its_clock_with_the_sdk_imported(same_gc: bool, tmp_path: Path) -> None:
    """`ratio` leaves the render's import out, so the floor's time must leave the SDK's out too:
    a fresh floor process imports all it needs before it starts the clock, and nothing while it
    runs (a plan with a provider, a secret input and a component)."""
    provider = _planned("pulumi:providers:command::p", "pulumi:providers:command")
    component = _planned("hybridai:host:Bootstrap::b", "hybridai:host:Bootstrap", custom=False)
    plan = [provider, component, _planned(
        "hybridai:host:Bootstrap$command:remote:Command::c", "command:remote:Command", parent=component["urn"],
        provider=provider["urn"], timeouts={"create": "30m"},
        inputs={"create": "true", "connection": {floor.SECRET_MARK: {"host": "192.0.2.10"}}})]
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(plan))
    probe = "\n".join([
        "import json, sys, time",
        "real, loaded = time.perf_counter, []",
        "def clock():",
        "    if sys._getframe(1).f_code.co_filename.endswith('tools/floor.py'):",
        "        loaded.append(sorted(sys.modules))",
        "    return real()",
        "time.perf_counter = clock",
        "from tools.floor import time_replay",
        f"time_replay({str(replay)!r}, same_gc={same_gc})",
        "print(json.dumps(loaded))",
    ])
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, timeout=120, check=True)
    started, stopped = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads(result.stdout.strip().splitlines()[0])["resources"] == len(plan)
    assert {"pulumi", "pulumi.runtime.stack", "tools.render.mockrun"} <= set(started)
    assert sorted(set(stopped) - set(started)) == []


def _outputs_made_replaying(resources: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many Outputs the SDK makes while the floor registers `resources` under bare mocks."""
    import pulumi

    made = [0]
    from_data, init = pulumi.Output._from_data.__func__, pulumi.Output.__init__  # type: ignore[attr-defined]

    def counted_from_data(cls: type, data: Any) -> Any:
        made[0] += 1
        return from_data(cls, data)

    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(pulumi.Output, "_from_data", classmethod(counted_from_data))
    monkeypatch.setattr(pulumi.Output, "__init__", counted_init)
    floor.register(resources)
    return made[0]


def test_floor_registers_a_secret_input_with_one_output_whatever_its_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """...and nothing more: a secret input costs the floor one Output over the same input in
    the clear, a secret connection (a dict, a jump host's inside) no more than a secret string.
    Output.secret would unwrap the dict first, an Output per key and value, more than the
    render's own typed connection costs it."""
    def one_command(connection: Any) -> list[dict[str, Any]]:
        return [_planned("command:remote:Command::c", "command:remote:Command", inputs={"create": "true", "connection": connection})]

    login = {"host": "192.0.2.10", "port": 22, "user": "ubuntu", "privateKey": "KEY", "hostKey": "ssh-ed25519 AAAA",
             "dialErrorLimit": 4, "perDialTimeout": 15}
    _outputs_made_replaying([], monkeypatch)  # the first program in a process makes one-time Outputs
    in_the_clear = _outputs_made_replaying(one_command("KEY"), monkeypatch)
    as_string = _outputs_made_replaying(one_command({floor.SECRET_MARK: "KEY"}), monkeypatch)
    as_dict = _outputs_made_replaying(one_command({floor.SECRET_MARK: login | {"proxy": dict(login)}}), monkeypatch)
    assert as_dict == as_string == in_the_clear + 1


def test_renders_go_to_memory_only_on_a_tmpfs_with_room(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    monkeypatch.setattr(scratch, "MOUNTS", mounts)
    monkeypatch.setattr(scratch, "MEMORY_FS", tmp_path)
    monkeypatch.setattr(scratch, "MIN_FREE", 1)
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\ntmpfs {tmp_path} tmpfs rw,nosuid 0 0\n")
    assert scratch.memory_fs() == tmp_path
    mounts.write_text(f"/dev/vda {tmp_path} ext4 rw 0 0\n")  # a disk
    assert scratch.memory_fs() is None
    mounts.write_text(f"tmpfs {tmp_path} tmpfs rw 0 0\n")
    monkeypatch.setattr(scratch, "MIN_FREE", 2**62)  # more room than any machine has
    assert scratch.memory_fs() is None
    monkeypatch.setattr(scratch, "MOUNTS", tmp_path / "absent")  # no /proc: not Linux
    assert scratch.memory_fs() is None
    monkeypatch.setattr(scratch, "MIN_FREE", 1)
    monkeypatch.setattr(scratch, "MOUNTS", mounts)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # read-only, or not ours
    assert scratch.memory_fs() is None
