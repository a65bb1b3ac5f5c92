"""`make diff`: the offline preview between a git ref and the working tree.

Each test builds a throw-away git repository holding a copy of the program, commits it as
BASE, changes the working tree, and diffs; the project's own repository is never touched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import PROJECT
from tools.render.diff import Changes, changed_paths, compare, diff, main, report
from tools.render.replace import replacing

PARTS = ["Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "charts", "components", "stacks", "tools"]
NEW_MODEL = {"name": "summarizer", "image": "ghcr.io/example/summarizer:0.3.1", "placement": "cloud", "port": 8000}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    files = _git(PROJECT, "ls-files", "-co", "--exclude-standard", "--", *PARTS).split()
    for rel in files:
        if (PROJECT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / rel, root / rel)
    _git(root.parent, "init", "-q", str(root))
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return root


def _edit_stack(repo: Path, edit: object) -> None:
    path = repo / "Pulumi.dev.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["config"])  # type: ignore[operator]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _commit(repo: Path) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "more")


def _no_leftover_worktree(repo: Path) -> None:
    assert _git(repo, "worktree", "list").count("\n") == 1


def test_a_stack_against_itself_is_empty_with_exit_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base", "HEAD", "--repo", str(repo)]) == 0
    assert "Resources: no changes" in capsys.readouterr().out
    _no_leftover_worktree(repo)


def test_adding_a_model_shows_exactly_its_creates(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_stack(repo, lambda c: c["hybrid-ai:models"].append(NEW_MODEL))
    changes = diff("HEAD", "dev", repo)
    assert changes.create and all(name.startswith("summarizer") for _, name in changes.create), changes.create
    assert ("kubernetes:apps/v1:Deployment", "summarizer-deployment") in changes.create
    assert ("hybridai:k8s:ModelService", "summarizer") in changes.create
    assert (changes.update, changes.replace, changes.delete, changes.files) == ([], [], [], [])
    assert main(["--base", "HEAD", "--repo", str(repo)]) == 1
    assert f"Resources: {len(changes.create)} to create, 0 to update, 0 to replace, 0 to delete" in capsys.readouterr().out


def test_a_changed_host_script_is_an_update_with_a_unified_diff(repo: Path) -> None:
    script = repo / "components" / "cluster" / "scripts" / "gpu-check.sh"
    script.write_text(script.read_text() + "# a reviewer should see this line\n")
    changes = diff("HEAD", "dev", repo)
    assert changes.update and not (changes.create or changes.delete or changes.replace)
    assert all(lines[0] == "create: (script, below)" for _, _, lines in changes.update)
    assert any(re.search(r"^\+# a reviewer should see this line$", f, re.M) for f in changes.files)
    assert all(f.startswith("--- a/hosts/") for f in changes.files)


def test_a_changed_secret_shows_only_secret(repo: Path) -> None:
    old, new = "v1:AAAAAAAAAAAAAAAA/oldciphertext", "v1:BBBBBBBBBBBBBBBB/newciphertext"
    _edit_stack(repo, lambda c: c.update({"hybrid-ai:sshPrivateKey": {"secure": old}}))
    _commit(repo)
    _edit_stack(repo, lambda c: c.update({"hybrid-ai:sshPrivateKey": {"secure": new}}))
    changes = diff("HEAD", "dev", repo)
    assert changes.update and not (changes.create or changes.delete)
    for _, _, lines in changes.update:
        assert all(line.endswith(": [secret]") for line in lines), lines
    # The kubeconfig command's connection changes, so its stdout is unknown in preview
    # (pulumi-go-provider's default wiring) and the Kubernetes provider is replaced.
    for _, name, lines in changes.replace:
        assert lines[-1].startswith(("replaced because its provider cluster-k8s", "replaced because of: kubeconfig (unknown")), (name, lines)
    text = report(changes)
    assert old not in text and new not in text and "placeholder" not in text


def test_removing_a_workstation_shows_its_deletes(repo: Path) -> None:
    _edit_stack(repo, lambda c: c.update({"hybrid-ai:hosts": [h for h in c["hybrid-ai:hosts"] if h["name"] != "ws-2"]}))
    changes = diff("HEAD", "dev", repo)
    deleted = {name for _, name in changes.delete}
    assert {"ws-2", "ws-2-bootstrap", "cluster-ws-2-microk8s"} <= deleted
    assert not changes.create
    assert not any("ws-2" in name for _, name, _ in changes.update + changes.replace)


def test_a_bad_base_fails_with_exit_2_and_leaves_no_worktree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base", "no-such-ref", "--repo", str(repo)]) == 2
    assert capsys.readouterr().err.startswith("diff: BASE 'no-such-ref' is no commit")
    (repo / "Pulumi.dev.yaml").write_text("config:\n  hybrid-ai:sites: 3\n")
    _commit(repo)
    assert main(["--base", "HEAD", "--repo", str(repo)]) == 2  # BASE does not render: the worktree still goes
    _no_leftover_worktree(repo)


def test_changed_paths_are_leaves_and_a_secret_is_one_leaf() -> None:
    old = {"spec": {"replicas": 1, "template": {"containers": [{"image": "a:1"}]}}, "key": {"[secret]": "x"}}
    new = {"spec": {"replicas": 2, "template": {"containers": [{"image": "a:2"}]}}, "key": {"[secret]": "y"}}
    assert [p for p, _, _ in changed_paths(old, new)] == ["key", "spec.replicas", "spec.template.containers[0].image"]


@pytest.mark.parametrize(("type_", "path", "replaces"), [
    ("command:remote:Command", "create", False),
    ("command:remote:Command", "connection", False),
    ("command:remote:Command", "triggers[0]", True),
    ("kubernetes:apps/v1:Deployment", "spec.template.spec.containers[0].image", False),
    ("kubernetes:apps/v1:Deployment", "spec.selector.matchLabels.app", True),
    ("kubernetes:apps/v1:Deployment", "metadata.name", True),
    ("kubernetes:core/v1:ConfigMap", "data.config", True),
    ("kubernetes:core/v1:Service", "spec.ports[0].port", False),
    ("kubernetes:core/v1:NodePatch", "metadata.labels.x", False),
    ("kubernetes:core/v1:PersistentVolumeClaim", "spec.storageClassName", True),
])
def test_replacement_follows_the_providers_rules(type_: str, path: str, replaces: bool) -> None:
    assert bool(replacing(type_, [path])) is replaces


def test_report_of_no_changes() -> None:
    assert report(Changes()) == "Resources: no changes\n"


def test_a_stack_new_since_base_is_all_creates_and_an_unknown_one_fails(repo: Path) -> None:
    shutil.copy2(repo / "Pulumi.dev.yaml", repo / "Pulumi.staging.yaml")
    changes = diff("HEAD", "staging", repo)
    assert changes.create and not (changes.update or changes.replace or changes.delete)
    assert main(["--base", "HEAD", "--stack", "nowhere", "--repo", str(repo)]) == 2
    _no_leftover_worktree(repo)


def test_changed_inputs_are_named_and_immutable_ones_replace(repo: Path) -> None:
    def edit(c: dict) -> None:  # type: ignore[type-arg]
        next(m for m in c["hybrid-ai:models"] if m["name"] == "receipt-api")["replicas"] = 3
        c["hybrid-ai:timeSlicing"]["profiles"][0]["replicas"] = 2
    _edit_stack(repo, edit)
    changes = diff("HEAD", "dev", repo)
    updates = {name: lines for _, name, lines in changes.update}
    assert "spec.minReplicas: 2 => 3" in updates["receipt-api-hpa"]  # its HPA holds the count: the Deployment has none
    replaced = {(t, name): lines for t, name, lines in changes.replace}
    configmaps = [lines for (t, _), lines in replaced.items() if t == "kubernetes:core/v1:ConfigMap"]
    assert configmaps and configmaps[0][-1].startswith("replaced because of: data.")
    assert "+- replace  kubernetes:core/v1:ConfigMap" in report(changes)


def _plan(path: Path, resources: dict[str, dict[str, object]]) -> Path:
    path.mkdir()
    (path / "resources.json").write_text(json.dumps(resources))
    return path


def test_a_changed_kubeconfig_source_replaces_the_provider_and_everything_it_manages(tmp_path: Path) -> None:
    # pulumi-kubernetes DiffConfig (HEAD 9497796, v4.32.0): an unknown kubeconfig replaces the
    # provider; the engine replaces what it manages. The kubeconfig command re-runs on a change.
    cmd, prov, ns, cm, other = (f"urn:{n}" for n in ("cmd", "prov", "ns", "cm", "other"))
    def resources(script: str, identifier: str | None = None) -> dict[str, dict[str, object]]:
        return {
            cmd: {"type": "command:remote:Command", "name": "cluster-kubeconfig", "inputs": {"create": script}, "dependencies": []},
            prov: {"type": "pulumi:providers:kubernetes", "name": "cluster-k8s", "dependencies": [cmd],
                   "inputs": {"kubeconfig": {"[secret]": "d1"}, **({"clusterIdentifier": identifier} if identifier else {})}},
            ns: {"type": "kubernetes:core/v1:Namespace", "name": "ns", "inputs": {"metadata": {"name": "a"}}, "dependencies": [prov]},
            cm: {"type": "kubernetes:core/v1:ConfigMap", "name": "cm", "inputs": {"data": {"k": "1"}}, "dependencies": [prov, ns]},
            other: {"type": "command:remote:Command", "name": "other", "inputs": {"create": "x"}, "dependencies": []},
        }
    changes = compare(_plan(tmp_path / "a", resources("SERVER=1")), _plan(tmp_path / "b", resources("SERVER=2")))
    replaced = {name: lines for _, name, lines in changes.replace}
    assert set(replaced) == {"cluster-k8s", "ns", "cm"}
    assert replaced["cluster-k8s"] == ["replaced because of: kubeconfig (unknown in preview: cluster-kubeconfig changes)"]
    assert replaced["ns"] == ["replaced because its provider cluster-k8s is replaced"]
    assert [name for _, name, _ in changes.update] == ["cluster-kubeconfig"]
    assert "+- replace  kubernetes:core/v1:Namespace ns" in report(changes)
    # An unchanged clusterIdentifier keeps the provider (and its resources) in place.
    same = compare(_plan(tmp_path / "c", resources("SERVER=1", "c1")), _plan(tmp_path / "d", resources("SERVER=2", "c1")))
    assert not same.replace and [name for _, name, _ in same.update] == ["cluster-kubeconfig"]
    # Adopting an identifier (this program's provider got one) replaces nothing by itself.
    adopt = compare(_plan(tmp_path / "g", resources("SERVER=1")), _plan(tmp_path / "h", resources("SERVER=1", "hybrid-ai-cluster")))
    assert not adopt.replace and [name for _, name, _ in adopt.update] == ["cluster-k8s"]
    # Nothing upstream changes: no replacement.
    quiet = compare(_plan(tmp_path / "e", resources("SERVER=1")), _plan(tmp_path / "f", {**resources("SERVER=1"), other: {
        "type": "command:remote:Command", "name": "other", "inputs": {"create": "y"}, "dependencies": []}}))
    assert not quiet.replace


def test_a_changed_kubeconfig_script_replaces_no_kubernetes_resource(repo: Path) -> None:
    # The program's provider has a fixed clusterIdentifier: a re-run kubeconfig step (another
    # seed, address or SSH key) updates it in place instead of replacing every object.
    script = repo / "components" / "cluster" / "scripts" / "microk8s-kubeconfig.sh"
    script.write_text(script.read_text() + "# changed\n")
    changes = diff("HEAD", "dev", repo)
    assert not changes.replace, changes.replace
    assert [name for _, name, _ in changes.update] == ["cluster-kubeconfig"]


def _make_diff(repo: Path, base: str) -> subprocess.CompletedProcess[str]:
    shutil.copy2(PROJECT / "Makefile", repo / "Makefile")
    return subprocess.run(["make", "-s", "-C", str(repo), "diff", f"BASE={base}", f"VENV={PROJECT / '.venv'}"],
                          capture_output=True, text=True, timeout=300)


def test_make_diff_exits_0_1_and_2_through_make_itself(repo: Path) -> None:
    # make turns a failing recipe's 1 into its own 2; the Makefile must not let it.
    _edit_stack(repo, lambda c: c["hybrid-ai:models"].append(NEW_MODEL))
    changed = _make_diff(repo, "HEAD")
    assert changed.returncode == 1, changed.stderr
    assert re.search(r"^Resources: \d+ to create, 0 to update, 0 to replace, 0 to delete$", changed.stdout, re.M), changed.stdout
    _commit(repo)
    same = _make_diff(repo, "HEAD")
    assert (same.returncode, same.stdout.splitlines()[-1]) == (0, "Resources: no changes"), same.stderr
    bad = _make_diff(repo, "no-such-ref")
    assert bad.returncode == 2 and "diff: BASE 'no-such-ref' is no commit" in bad.stderr
    _no_leftover_worktree(repo)
