"""Turn a script from `components/scripts/` plus parameters into one remote command.

What runs on a host is: the parameters as shell-quoted assignments, then `lib.sh` (shared
helpers), then the script. No value is ever pasted into shell code. Secrets never go here:
pass them on the command's stdin.

`python -m components.shell lint` runs shellcheck on every script as composed for a host.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pulumi

SCRIPTS = Path(__file__).parent / "scripts"
LIB = "lib.sh"


@cache
def script_text(name: str) -> str:
    return (SCRIPTS / name).read_text()


def compose(name: str, params: Mapping[str, str]) -> str:
    """The full text that runs on the host for script `name` with `params`."""
    header = f"# hybrid-ai: {name} (parameters below are set by the Pulumi program)\n"
    assignments = "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(params.items()))
    return header + assignments + script_text(LIB) + script_text(name)


def command_line(name: str, script: str, *, sudo: bool) -> str:
    """`[sudo -n] bash -c '<script>' hybrid-ai/<name>`."""
    prefix = "sudo -n bash -c " if sudo else "bash -c "
    return prefix + shlex.quote(script) + " " + shlex.quote("hybrid-ai/" + name.removesuffix(".sh"))


def remote_command(name: str, params: Mapping[str, pulumi.Input[str]], *, sudo: bool) -> pulumi.Input[str]:
    """The command line a remote.Command runs for script `name`."""
    if all(isinstance(v, str) for v in params.values()):
        return command_line(name, compose(name, {k: str(v) for k, v in params.items()}), sudo=sudo)
    return pulumi.Output.all(**params).apply(lambda values: command_line(name, compose(name, values), sudo=sudo))


def lint() -> int:
    """shellcheck every host script as composed (parameters, lib.sh, body)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for script in sorted(SCRIPTS.glob("*.sh")):
            if script.name == LIB:
                continue
            path = Path(tmp) / script.name
            path.write_text("#!/usr/bin/env bash\n" + compose(script.name, {}))
            paths.append(str(path))
        return subprocess.run(["shellcheck", "--severity=style", *paths], check=False).returncode


if __name__ == "__main__" and sys.argv[1:] == ["lint"]:
    sys.exit(lint())
