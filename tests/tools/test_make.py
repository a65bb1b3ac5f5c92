"""The Makefile's set-up and its promises to a newcomer."""

from __future__ import annotations

import subprocess

from tests.support.helpers import PROJECT


def test_make_venv_says_what_it_is_doing() -> None:
    # A fresh venv takes minutes: each step is announced and pip prints its packages.
    dry = subprocess.run(["make", "-n", "-B", "venv"], cwd=PROJECT, capture_output=True, text=True, check=True, timeout=60).stdout
    pip_lines = [line for line in dry.splitlines() if "pip install " in line]
    assert len(pip_lines) == 2 and not any(" -q" in line for line in pip_lines), pip_lines
    steps = [line for line in dry.splitlines() if line.startswith("echo \"venv ")]
    assert [s.split(":")[0] for s in steps] == ['echo "venv 1/2', 'echo "venv 1/2', 'echo "venv 2/2', 'echo "venv 2/2'], steps


def _tracked() -> tuple[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    return git("status", "--porcelain"), git("diff")


def test_make_targets_that_write_leave_git_status_as_it_was() -> None:
    # make preview, diff and check have their own tests; these are the others that write files.
    before = _tracked()
    for target in (["docs"], ["render", "STACK=dev"], ["mirror", "STACK=dev"], ["golden"]):
        done = subprocess.run(["make", "-s", *target], cwd=PROJECT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert _tracked() == before, f"make {' '.join(target)} changed what git tracks"
