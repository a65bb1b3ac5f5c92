"""The README and the pages it leads to stay true: every `make` target they name exists, every
path and test they name exists, every relative link lands on a file and heading, the README
stays short, and its quick start renders, passes the policy check and draws the picture shown."""

from __future__ import annotations

import ast
import re
import stat
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from stacks.config import StackConfig
from tests.support.helpers import PROJECT

README = PROJECT / "README.md"
# The pages the README's sections moved to (other docs/ pages are checked by their own tests).
PAGES = [README, *(PROJECT / "docs" / f"{name}.md" for name in ("architecture", "operations", "testing", "performance"))]
TOP = ("components", "stacks", "tools", "tests", "docs", "policy", "engine", "charts", ".github", ".ci")


def make_targets() -> set[str]:
    text = (PROJECT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*:(?!=)", text, re.M)) | {
        t for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for t in line.split()}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text().splitlines():
        in_code ^= line.startswith("```")
        if not in_code and (m := re.match(r"#+ (.*)", line)):
            base, n = slug(m.group(1)), 0
            while (candidate := base if n == 0 else f"{base}-{n}") in found:
                n += 1
            found.add(candidate)
    return found


def test_the_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_make_target_named_exists(page: Path) -> None:
    named = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", page.read_text())) - {"sure", "a", "the", "it", "them"}
    assert named or page != README
    assert not named - make_targets(), f"{page.name} names make targets that do not exist: {sorted(named - make_targets())}"


@cache
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((PROJECT / path).read_text())
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_path_and_test_named_exists(page: Path) -> None:
    missing = []
    for token in re.findall(r"`([^`\s]+)`", page.read_text()):
        path, _, test = token.partition("::")
        path = path.rstrip(".,;:")
        if any(c in path for c in "<*{") or "mine" in path or not (path.startswith(tuple(f"{t}/" for t in TOP)) or re.fullmatch(r"Pulumi\.\w+\.yaml", path)):
            continue
        if not (PROJECT / path).exists():
            missing.append(path)
        elif test and path.endswith(".py") and test.split("(")[0] not in _test_names(path):
            missing.append(token)
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_lands_on_a_file_and_heading(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_readme_lists_every_config_section() -> None:
    listed = re.findall(r"^\| `hybrid-ai:(\w+)` \|", README.read_text(), re.M)
    assert listed == [f.alias or n for n, f in StackConfig.model_fields.items()]


def _quick_start() -> str:
    text = README.read_text()
    section = text.split("### 3. The stack file", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_quick_start_renders_passes_the_policies_and_draws_the_picture(tmp_path: Path) -> None:
    from tools.check import main as check

    stack = _quick_start()
    assert set(yaml.safe_load(stack)["config"]) >= {"hybrid-ai:sites", "hybrid-ai:hosts", "hybrid-ai:models"}
    (tmp_path / "Pulumi.mine.yaml").write_text(stack)
    assert check(["--stack", "mine", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    drawn = (tmp_path / "out" / "topology.mmd").read_text()
    assert "```mermaid\n" + drawn + "```" in README.read_text(), "the README's picture is not the quick start's render"


def _shell_lines(page: Path) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", page.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines()]


@pytest.mark.parametrize("page", [README, PROJECT / "docs" / "operations.md"], ids=lambda p: p.name)
def test_the_kubeconfig_command_works_on_a_fresh_machine_and_keeps_the_file_private(page: Path, tmp_path: Path) -> None:
    """It holds cluster-admin credentials: written where no ~/.kube exists yet, readable by its owner alone."""
    (bin_dir := tmp_path / "bin").mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\necho 'apiVersion: v1  # stand-in for the stack output'\n")
    (bin_dir / "pulumi").chmod(0o755)
    lines = _shell_lines(page)
    (write,) = [line for line in lines if "kubeconfig --show-secrets" in line]
    (export,) = [line.split("#")[0].strip() for line in lines if line.startswith("export KUBECONFIG=")]
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(["bash", "-ec", f"umask 022; {write.split(' # ')[0]}; {export}; echo \"$KUBECONFIG\""], capture_output=True,
                          text=True, env={"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=30)
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert written == home / ".kube" / "hybrid-ai" and written.read_text().startswith("apiVersion: v1")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_the_quick_start_makes_a_deploy_key_the_program_can_use(tmp_path: Path) -> None:
    from stacks.ssh_key import passphrase_protected

    lines = _shell_lines(README) + re.findall(r"`(ssh-keygen [^`]*)`", README.read_text())
    (keygen,) = {line for line in lines if line.startswith("ssh-keygen")}
    (home := tmp_path / "home").mkdir()
    (home / ".ssh").mkdir()
    subprocess.run(["bash", "-ec", keygen], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=True, capture_output=True, timeout=60)
    (config_set,) = [line for line in lines if "config set --secret sshPrivateKey" in line]
    key = Path(config_set.split("<", 1)[1].split()[0].replace("~", str(home)))
    assert not passphrase_protected(key.read_text())
    assert "~/.ssh/id_" not in README.read_text()  # never the operator's personal key


def test_the_policy_pack_venv_of_the_quick_start_is_ignored_by_git() -> None:
    (venv,) = set(re.findall(r"python3 -m venv (\S+)", README.read_text()))
    assert subprocess.run(["git", "check-ignore", "-q", f"{venv}/bin/python"], cwd=PROJECT, timeout=30).returncode == 0


def test_the_readme_warns_that_the_first_up_reboots_a_gpu_host_without_a_driver() -> None:
    prepare = README.read_text().split("### 1. What to prepare", 1)[1].split("### 2.", 1)[0]
    assert "reboots a GPU host that has no working driver" in prepare


@pytest.mark.e2e
@pytest.mark.engine
def test_pulumi_config_set_moves_no_line_of_the_quick_start(tmp_path: Path) -> None:
    """The real CLI re-emits the stack file (go-yaml: one space before a line's comment); the
    quick start's comments are written that way, so setting the key only adds lines."""
    cli = PROJECT / ".engine" / "bin" / "pulumi"
    if not cli.exists():
        pytest.skip("the Pulumi CLI is not built: run `make engine`")
    (tmp_path / "Pulumi.yaml").write_text("name: hybrid-ai\nruntime: python\n")
    (tmp_path / "Pulumi.mine.yaml").write_text(_quick_start())
    (tmp_path / "state").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
           "PULUMI_CONFIG_PASSPHRASE": "x", "PULUMI_SKIP_UPDATE_CHECK": "true"}
    for args, stdin in ((["stack", "init", "mine"], ""), (["config", "set", "--secret", "sshPrivateKey"], "a key\n")):
        subprocess.run([str(cli), *args], cwd=tmp_path, env=env, input=stdin, text=True, capture_output=True, check=True, timeout=120)
    after = (tmp_path / "Pulumi.mine.yaml").read_text().splitlines()
    before = _quick_start().splitlines()
    assert after[: len(before)] == before
