"""`make preview`: it never rewrites a tracked file, whatever CLI it finds and however it ends;
the pull-request workflow runs it; the lab's example stack previews whole with the built engine.

The Pulumi CLI writes into the stack file of the directory it runs in (`stack init` adds an
`encryptionsalt` with the passphrase provider, `config set --secret` a `secure:` value, and
either re-emits the file's YAML). `make preview` runs it in a scratch copy. Three cases:
no CLI at all; a CLI on PATH (a stand-in that writes to its working directory as the real one
does, and records where it ran); and, when `make engine` has built it, the real CLI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import lab_stack
from tests.support.helpers import PROJECT

# A stand-in for the installed CLI: not logged in; `stack init` and `config set` write into the
# stack file of its working directory, as the real CLI does; `preview` records its directory.
FAKE_PULUMI = r"""#!/bin/bash
echo "$PWD $*" >> "$FAKE_LOG"
stack=dev
for a in "$@"; do case $prev in --stack) stack=$a ;; esac; prev=$a; done
case "$1 $2" in
  "whoami "*) exit 1 ;;
  "stack init") stack=$3; echo "encryptionsalt: v1:FAKE-SALT" >> "Pulumi.$stack.yaml" ;;
  "config get") exit 1 ;;
  "config set") cat >/dev/null; printf '  hybrid-ai:sshPrivateKey:\n    secure: v1:FAKE\n' >> "Pulumi.$stack.yaml" ;;
  "preview "*) grep -q FAKE-SALT "Pulumi.$stack.yaml" || { echo "no salt in the stack file" >&2; exit 3; }; exit "${FAKE_PREVIEW_EXIT:-0}" ;;
esac
"""


def tracked_state() -> tuple[str, str]:
    """What git sees of the project: the status and the diff of tracked files."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    return git("status", "--porcelain"), git("diff")


def make_preview(env: dict[str, str], stack: str = "dev") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "preview", f"STACK={stack}"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)


def test_preview_without_any_cli_explains_and_changes_nothing(tmp_path: Path) -> None:
    before = tracked_state()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ENGINE_BIN": str(tmp_path / "no-engine")}
    if Path("/usr/bin/pulumi").exists():
        pytest.skip("a pulumi binary is on the system PATH")
    result = make_preview(env)
    assert result.returncode == 2  # make's own code for the script's 1
    assert "make render" in result.stderr and "make engine" in result.stderr
    assert tracked_state() == before


@pytest.mark.parametrize("preview_exit", [0, 1])
def test_preview_runs_the_cli_in_a_scratch_copy_and_leaves_the_stack_file_alone(tmp_path: Path, preview_exit: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "calls"
    before = tracked_state()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_LOG": str(log), "FAKE_PREVIEW_EXIT": str(preview_exit),
           "TMPDIR": str(tmp_path)}
    result = make_preview(env)
    assert result.returncode == (0 if preview_exit == 0 else 2), result.stderr
    calls = log.read_text().splitlines()
    assert any(" preview --stack dev --diff --policy-pack " in c for c in calls), calls
    dirs = {c.split(" ", 1)[0] for c in calls}
    assert str(PROJECT) not in dirs and all(d.startswith(str(tmp_path)) for d in dirs), dirs
    assert tracked_state() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("hybrid-ai-preview.")]  # the scratch copy is gone


@pytest.mark.e2e
@pytest.mark.engine
def test_preview_with_the_engine_says_where_it_stops_and_changes_nothing(tmp_path: Path) -> None:
    engine = PROJECT / ".engine" / "bin" / "pulumi"
    if not engine.exists():
        pytest.skip("the Pulumi CLI is not built: run `make engine`")
    before = tracked_state()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    env.update({k: v for k, v in os.environ.items() if k in ("GOCACHE", "GOMODCACHE")})
    result = make_preview(env)
    assert "the CLI built by `make engine`" in result.stderr, result.stderr[-2000:]
    if result.returncode != 0:  # today: the pulumi-command plugin is not on this machine
        assert re.search(r"showed \d+ resources to create, then stopped: this machine has no pulumi-resource-\w+ plugin",
                         result.stderr), result.stderr[-2000:]
        assert "make render STACK=dev" in result.stderr
    assert tracked_state() == before


def test_the_pull_request_workflow_runs_make_preview_and_make_preview_runs_the_script() -> None:
    """One set of steps: the workflow's preview job runs `make preview` for its stack and runs no
    `pulumi` of its own; `make preview` runs tools/preview.sh, and only that."""
    job = yaml.safe_load((PROJECT / ".github" / "workflows" / "preview.yml").read_text())["jobs"]["preview"]
    runs = [step for step in job["steps"] if "run" in step]
    (preview,) = [step for step in runs if "make preview" in step["run"]]
    assert preview["run"].strip() == 'make preview STACK="$STACK"' and preview["env"]["STACK"] == "${{ matrix.stack }}"
    for step in job["steps"]:
        assert not re.search(r"(^|[\s;&|])pulumi\s", step.get("run", "")), step
        if step.get("uses", "").startswith("pulumi/actions@"):
            assert "command" not in step.get("with", {}), "the action only installs the CLI; make preview runs it"
    recipe = subprocess.run(["make", "-n", "-s", "-o", ".venv/.installed", "preview", "STACK=lab"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert recipe == ["STACK=lab bash tools/preview.sh"]


def test_the_lab_stack_is_the_lab_with_placeholder_host_keys() -> None:
    assert (PROJECT / "Pulumi.lab.yaml").read_text() == lab_stack.render(), "run python -m tests.support.lab_stack"


@pytest.mark.e2e
@pytest.mark.engine
def test_preview_of_the_lab_stack_with_the_engine_is_whole_and_changes_nothing(tmp_path: Path) -> None:
    """The real CLI `make engine` built, the lab's command stand-in and the pulumi-kubernetes
    provider: every layer planned (no kubeconfig before `up`), said plainly, nothing written."""
    engine = PROJECT / ".engine" / "bin" / "pulumi"
    if not engine.exists() or not (PROJECT / ".engine" / "standin" / "pulumi-resource-command").exists():
        pytest.skip("the Pulumi CLI or the command stand-in is not built: run `make engine command-standin`")
    before = tracked_state()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    result = make_preview(env, "lab")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    created = re.findall(r"^\s*\+ (\d+) to create", result.stdout, re.M)
    assert created and int(created[-1]) >= 100, result.stdout[-3000:]
    for kind in ("kubernetes:apps/v1:Deployment", "command:remote:Command", "hybridai:vpn:WireGuardMesh"):
        assert kind in result.stdout, kind
    assert "the real engine's plan of the whole program" in result.stderr and "test-only stand-in" in result.stderr
    assert "The policy pack did not run" in result.stderr
    assert tracked_state() == before


@pytest.mark.e2e
@pytest.mark.engine
def test_preview_with_the_engine_shows_the_config_error_it_stopped_on(tmp_path: Path) -> None:
    """A user's stack with no SSH key set yet: the program's one line is printed, then the account."""
    engine = PROJECT / ".engine" / "bin" / "pulumi"
    if not engine.exists():
        pytest.skip("the Pulumi CLI is not built: run `make engine`")
    (tmp_path / "Pulumi.own.yaml").write_text((PROJECT / "Pulumi.dev.yaml").read_text())
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "PULUMI_CONFIG_PASSPHRASE": "x"}
    result = subprocess.run([str(PROJECT / ".venv" / "bin" / "python"), "-m", "tools.preview_engine", "--stack", "own", "--dir", str(tmp_path)],
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    missing = ("  - hybrid-ai:sshPrivateKey: missing (needed by hosts[0].ssh.privateKeyConfig); "
               "set it with `pulumi config set --secret sshPrivateKey < FILE`")
    assert lines[-3:-1] == ["error: invalid stack config:", missing], result.stderr
    assert "failed before any provider was needed: the error above is the program's or the config's" in lines[-1]
    assert "Traceback" not in result.stderr


def test_the_cli_errors_are_kept_without_tracebacks() -> None:
    from tools.preview_engine import cli_errors

    failure = ("\n code: 1\n stdout: + 1 to create\n stderr: error: invalid stack config:\n  - hybrid-ai:a: bad\n"
               "error: python inline source runtime error: 1\nTraceback (most recent call last):\n  - not an item\n"
               "stacks.load.ConfigError: invalid stack config:\n  - hybrid-ai:a: bad\n"
               "error: preview failed: no resource plugin 'pulumi-resource-command' found\n")
    assert cli_errors(failure) == ["error: invalid stack config:", "  - hybrid-ai:a: bad",
                                   "error: preview failed: no resource plugin 'pulumi-resource-command' found"]
    assert cli_errors("no stderr part") == []
