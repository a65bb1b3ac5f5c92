"""The offline render (`make render`): plan shape, real dependency edges, secrets, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import PROJECT, deps_closure, evaluate_config, stack_config, unavailable
from tools.render.evaluate import Evaluation
from tools.render.write import write_all

COMMAND = "command:remote:Command"


def render(stack: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def dev_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("dev")
    result = render("dev", out)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "plan.json").read_text())


def by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def test_plan_has_the_contract_shape(dev_plan: tuple[Path, dict[str, Any]]) -> None:
    out, plan = dev_plan
    assert plan["stack"] == "dev"
    assert set(plan) == {"stack", "resources", "outputs"}
    urns = {r["urn"] for r in plan["resources"]}
    for r in plan["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "dependencies", "inputs"}
        assert r["parent"] is None or r["parent"].startswith("urn:pulumi:dev::hybrid-ai::")
        assert set(r["dependencies"]) <= urns, f"{r['name']} depends on something not in the plan"
    assert (out / "graph.mmd").read_text().startswith("flowchart LR")
    if shutil.which("dot"):
        assert "<svg" in (out / "graph.svg").read_text()


def test_every_bootstrap_depends_on_its_own_host_only(dev_plan: tuple[Path, dict[str, Any]]) -> None:
    _, plan = dev_plan
    res = by_name(plan)
    for h in ("vpn-hub", "receipt", "interface", "ws-1", "ws-2"):
        base = res[f"{h}-bootstrap-base"]
        assert base["parent"] == res[f"{h}-bootstrap"]["urn"]
        assert base["dependencies"] == [res[f"{h}-reachable"]["urn"]]
        assert res[f"{h}-reachable"]["parent"] == res[h]["urn"]


def test_vm_bootstrap_depends_on_its_instance_and_address(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("prod"))
    res = {r.name: r for r in ev.resources}
    for h in ("vpn-hub", "receipt", "interface"):
        base = res[f"{h}-bootstrap-base"]
        assert res[f"{h}-fip-assoc"].urn in base.dependencies  # the address it connects to
        closure = deps_closure(ev, base.urn)
        assert {res[f"{h}-vm"].urn, res[f"{h}-fip"].urn, res[f"{h}-host-key"].urn} <= closure
        other = {r.urn for r in ev.resources if r.name.startswith(tuple(x for x in ("vpn-hub", "receipt", "interface") if x != h))}
        assert not closure & other, f"{h}'s bootstrap waits on another host"


def test_bootstraps_run_in_parallel(dev_plan: tuple[Path, dict[str, Any]]) -> None:
    _, plan = dev_plan
    bases = [r for r in plan["resources"] if r["name"].endswith("-bootstrap-base")]
    base_urns = {r["urn"] for r in bases}
    assert len(bases) == 5
    assert all(not set(r["dependencies"]) & base_urns for r in bases)


def test_every_connection_pins_a_host_key_and_gives_up_quickly() -> None:
    for stack in ("dev", "prod"):
        ev = evaluate_config(stack_config(stack))
        for r in ev.of_type(COMMAND):
            from tools.render.write import reveal

            conn = reveal(r.inputs["connection"])
            assert conn["hostKey"].startswith("ssh-ed25519 "), r.name
            # About a minute for a dead host; a host coming back from a reboot gets ten.
            budget = 600 if r.name.endswith("-gpu-check") else 75
            assert conn["dialErrorLimit"] * conn["perDialTimeout"] <= budget, r.name


def test_every_remote_command_has_bounded_timeouts() -> None:
    for stack in ("dev", "prod", "netmaker"):
        commands = evaluate_config(stack_config(stack)).of_type(COMMAND)
        assert commands
        for r in commands:
            assert r.timeouts == {"create": "30m", "update": "30m", "delete": "15m"}, (stack, r.name, r.timeouts)


def test_security_groups_open_only_what_they_must() -> None:
    ev = evaluate_config(stack_config("prod"))
    world = [r for r in ev.of_type("openstack:networking/secGroupRule:SecGroupRule") if r.inputs["remoteIpPrefix"] == "0.0.0.0/0"]
    opened = sorted((r.inputs["protocol"], int(r.inputs["portRangeMin"]), int(r.inputs["portRangeMax"])) for r in world)
    assert opened == [("tcp", 80, 80), ("tcp", 443, 443), ("udp", 51820, 51820)]
    ssh = [r for r in ev.of_type("openstack:networking/secGroupRule:SecGroupRule") if r.inputs.get("portRangeMin") == 22]
    assert [r.inputs["remoteIpPrefix"] for r in ssh] == ["198.51.100.0/26"]
    assert len(ev.of_type("openstack:networking/secGroupRule:SecGroupRule")) == 5  # SSH, VPN, 80, 443, API from admins: nothing else
    res = {r.name: r for r in ev.resources}
    ingress_group = res["openstack-ingress"].urn
    assert ingress_group in res["receipt-port"].dependencies
    assert ingress_group not in res["vpn-hub-port"].dependencies


def test_rerender_is_byte_identical(tmp_path: Path) -> None:
    assert render("prod", tmp_path / "a").returncode == 0
    assert render("prod", tmp_path / "b").returncode == 0
    for name in ("plan.json", "graph.mmd"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_render_of_invalid_stack_names_the_key_and_exits_nonzero(tmp_path: Path) -> None:
    bad = PROJECT / "Pulumi.rendertest-bad.yaml"
    text = (PROJECT / "Pulumi.dev.yaml").read_text().replace("port: 51820", "port: 99999")
    bad.write_text(text)
    try:
        result = render("rendertest-bad", tmp_path)
    finally:
        bad.unlink()
    assert result.returncode == 2
    assert "hybrid-ai:vpn.port" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "plan.json").exists()


def test_cloud_init_documents_pass_the_cloud_init_schema(tmp_path: Path) -> None:
    if not shutil.which("cloud-init"):
        unavailable("cloud-init not installed (apt-get install cloud-init)")
    ev = evaluate_config(stack_config("prod"))
    write_all(ev, tmp_path)
    docs = sorted((tmp_path / "artifacts").rglob("cloud-init.yaml"))
    assert len(docs) == 3
    # Also the real document with a real-looking key, as it would reach the VM.
    from components.hosts.cloud_init import user_data

    real = tmp_path / "real.yaml"
    real.write_text(user_data("receipt", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", "ssh-ed25519 AAAA"))
    for doc in [*docs, real]:
        result = subprocess.run(["cloud-init", "schema", "--config-file", str(doc)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{doc}: {result.stdout}{result.stderr}"


def test_evaluation_records_only_this_run() -> None:
    first = evaluate_config(stack_config("dev"))
    second = evaluate_config(stack_config("dev"))
    assert isinstance(first, Evaluation)
    assert sorted(r.urn for r in first.resources) == sorted(r.urn for r in second.resources)
    assert len(second.resources) == len({r.urn for r in second.resources})
    # ... and under this run's own root: a run of another stack before it leaves no trace.
    other = evaluate_config(stack_config("dev"), stack="other")
    roots = {r.parent for r in other.resources if r.parent and "pulumi:pulumi:Stack::" in r.parent}
    assert roots == {"urn:pulumi:other::hybrid-ai::pulumi:pulumi:Stack::hybrid-ai-other"}


# `pulumi config set --secret` writes `<ns>:<key>: {secure: <ciphertext>}` and an
# `encryptionsalt` (passphrase provider) at the top of the stack file.
SECURE_ENTRY = "  hybrid-ai:sshPrivateKey:\n    secure: v1:SECURE-CIPHERTEXT-CANARY==\n"


def render_in(folder: Path, stack: str, text: str, out: Path) -> subprocess.CompletedProcess[str]:
    (folder / f"Pulumi.{stack}.yaml").write_text(text)
    return subprocess.run([sys.executable, "-m", "tools.render", "--dir", str(folder), "--stack", stack, "--out", str(out)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stack", ["dev", "ha", "netmaker", "prod", "llm"])
def test_every_example_stack_renders_with_a_secure_value(stack: str, tmp_path: Path) -> None:
    text = "encryptionsalt: v1:c2FsdA==:v1:Zm9v:YmFy\n" + (PROJECT / f"Pulumi.{stack}.yaml").read_text() + SECURE_ENTRY
    result = render_in(tmp_path, stack, text, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "sshPrivateKey is not set" not in result.stderr  # the secure entry was taken as the key
    plan = (tmp_path / "out" / "plan.json").read_text()
    assert '"[secret]"' in plan
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix != ".svg":
            assert "CANARY" not in path.read_text(), path


@pytest.mark.parametrize("bundle_in_file", [False, True], ids=["bundle not set", "bundle set with --secret"])
def test_byo_tls_renders_without_the_bundle_at_hand(bundle_in_file: bool, tmp_path: Path) -> None:
    text = (PROJECT / "Pulumi.dev.yaml").read_text().replace("tls: letsencrypt-staging", "tls: byo\n    tlsCertConfig: tlsBundle")
    text = text.replace("    acmeEmail: ops@example.com\n", "") + SECURE_ENTRY
    if bundle_in_file:
        text += "  hybrid-ai:tlsBundle:\n    secure: v1:BUNDLE-CIPHERTEXT-CANARY==\n"
    result = render_in(tmp_path, "byo", text, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert ("hybrid-ai:tlsBundle is not set in the stack" in result.stderr) != bundle_in_file
    assert "CANARY" not in (tmp_path / "out" / "plan.json").read_text()
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    (tls,) = [r for r in plan["resources"] if r["name"] == "ingress-tls"]
    assert tls["inputs"]["stringData"] == "[secret]"


DOC = (PROJECT / "Pulumi.dev.yaml").read_text()
BAD_FILES = [
    ("syntax error", "config:\n  hybrid-ai:vpn: {port: 1\n", "Pulumi.bad.yaml:3: not valid YAML"),
    ("tab indentation", "config:\n\thybrid-ai:vpn: {}\n", "Pulumi.bad.yaml:2: a tab in the indentation; YAML indents with spaces only"),
    ("key indented too far", DOC.replace("      site: cloud\n", "       site: cloud\n", 1),
     "Pulumi.bad.yaml:16: indentation: this line starts at column 8, the key above it at column 7; keys of one mapping start in the same column"),
    ("key not indented enough", DOC.replace("      site: cloud\n", "     site: cloud\n", 1),
     "Pulumi.bad.yaml:16: indentation: this line starts at column 6, the key above it at column 7"),
    ("a list", "- config\n- hosts\n", "Pulumi.bad.yaml:1: the file is a list, not a mapping"),
    ("a string", "hybrid-ai:hosts\n", "Pulumi.bad.yaml:1: the file is a str, not a mapping"),
    ("misspelled config", DOC.replace("config:\n", "configs:\n", 1),
     'Pulumi.bad.yaml:5: unknown top-level key "configs"; did you mean `config`? Rename it, or remove it'),
    ("config not a mapping", "encryptionsalt: v1:x\nconfig: [a, b]\n", "Pulumi.bad.yaml:2: `config` is a list, not a mapping"),
    ("misspelled namespace", DOC.replace("hybrid-ai:hosts:", "hybridai:hosts:"), "hybridai:hosts: namespace 'hybridai' is not this project's; write `hybrid-ai:hosts`"),
    ("underscore namespace", DOC.replace("hybrid-ai:vpn:", "hybrid_ai:vpn:"), "hybrid_ai:vpn: namespace 'hybrid_ai' is not this project's; write `hybrid-ai:vpn`"),
    ("key without namespace", DOC.replace("hybrid-ai:vpn:", "vpn:"), "config key \"vpn\" is not `<namespace>:<name>`; write it as `hybrid-ai:<name>`"),
    ("duplicate top-level key", DOC + "  hybrid-ai:vpn:\n    port: 51821\n", "key \"hybrid-ai:vpn\" is written twice (first at line"),
    ("duplicate nested key", DOC.replace("    mtu: 1380\n", "    mtu: 1380\n    mtu: 1300\n"), "key \"mtu\" is written twice"),
    ("recursive alias", "config: &a\n  hybrid-ai:x: *a\n", "Pulumi.bad.yaml:1: an alias refers to a node that contains it"),
    ("hostile duplicate key", 'config:\n  "a\\nb": 1\n  "a\\nb": 2\n', 'key "a\\nb" is written twice'),
    ("secret inside a section", DOC.replace("    mtu: 1380\n", "    mtu:\n      secure: v1:abc\n") + SECURE_ENTRY, "hybrid-ai:vpn: holds no secret data"),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_stack_file_fails_with_one_line_and_no_traceback(case: str, text: str, expected: str, tmp_path: Path) -> None:
    result = render_in(tmp_path, "bad", text, tmp_path / "out")
    assert result.returncode == 2, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("render: Pulumi.bad.yaml") and expected in lines[0], lines[0]
    assert "SECURE-CIPHERTEXT" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_render_leaves_no_previous_render_that_looks_current(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_in(tmp_path, "dev", DOC, out).returncode == 0
    assert (out / "plan.json").exists()
    result = render_in(tmp_path, "dev", DOC.replace("    mtu: 1380\n", "    mtu: 13\n"), out)
    assert result.returncode == 2 and "hybrid-ai:vpn.mtu" in result.stderr
    assert f"removed the previous {out}" in result.stderr
    assert sorted(tmp_path.iterdir()) == [tmp_path / "Pulumi.dev.yaml"]  # neither the old render nor a partial one


def test_misspelled_namespace_is_named_by_the_program_too() -> None:
    """Under the real CLI (no render), `pulumi up` hands the program every namespace's keys."""
    from stacks.load import ConfigError
    from tools.render.evaluate import evaluate

    config = {f"hybrid-ai:{k}": json.dumps(v) for k, v in stack_config("dev").items()}
    config["hybridAI:vpn"] = config.pop("hybrid-ai:vpn")
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate("test", config | {"hybrid-ai:sshPrivateKey": "k"}, {"hybrid-ai:sshPrivateKey"}, into=seen)
    assert err.value.problems == ["hybridAI:vpn: namespace 'hybridAI' is not this project's; write `hybrid-ai:vpn`"]
    assert seen.resources == []


def test_pyyaml_keeps_the_last_duplicate_silently_so_the_reader_checks_itself() -> None:
    """Why stackfile.read_document walks the node tree: PyYAML 6 does not reject duplicates."""
    import yaml

    assert yaml.safe_load("config:\n  hybrid-ai:vpn: {port: 1}\n  hybrid-ai:vpn: {port: 2}\n") == {"config": {"hybrid-ai:vpn": {"port": 2}}}


@pytest.mark.parametrize("feature", ["backup", "upgrade"])
def test_stacks_with_optional_features_render(tmp_path: Path, feature: str) -> None:
    """`make render` works whatever the config turns on: each optional step's mock output has
    the shape the program parses (a backup key, a roll in progress)."""
    raw = stack_config("dev")
    if feature == "backup":
        raw["backup"] = {"enabled": True, "host": "vpn-hub"}
        expected = "receipt/datastore-backup-schedule.create.sh"
    else:
        raw.setdefault("cluster", {})["upgrade"] = {"fromChannel": raw["cluster"].get("channel", "1.32/stable")}
        raw["cluster"]["channel"] = "1.33/stable"
        expected = "ws-1/cluster-ws-1-upgrade-refresh.create.sh"
    write_all(evaluate_config(raw), tmp_path)
    assert (tmp_path / "artifacts" / "hosts" / expected).is_file()
