"""Turn a host script plus parameters into one remote command.

Part of the kit every layer may use; it imports no layer. A script lives in the `scripts/`
folder of the layer that runs it (`components/<layer>/scripts/`), the shell libraries in the
kit's own; script names are unique across layers (`script_path` checks).

What runs on a host is: the parameters as shell-quoted assignments, then `lib.sh` (shared
helpers), then each library the script names in a `# uses: <name>.sh` line (`nft.sh`, the
nftables table helpers), then the script. No value is ever pasted into shell code. Secrets never go here:
pass them on the command's stdin.

`python -m components.kit.shell lint` runs shellcheck on every script as composed for a host.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pulumi

COMPONENTS = Path(__file__).resolve().parents[1]
LIB = "lib.sh"
LIBRARIES = COMPONENTS / "kit" / "scripts"
"""The kit's scripts are libraries, composed into others, never run alone."""
USES = re.compile(r"^# uses: (\S+\.sh)$", re.M)
LABEL = "hybrid-ai/"
"""Prefix of the label (bash's $0) each command line ends with."""
# shlex.quote writes a ' inside single quotes as '"'"'.
QUOTED_QUOTE = "'\"'\"'"
# `KEY=value` lines as `compose` writes them: value bare, or shlex-quoted in '...'.
ASSIGNMENT = re.compile(r"""^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>'(?:[^']|'"'"')*'|[^\s']*)$""", re.M)


def scripts() -> list[Path]:
    """Every host script of every layer (the kit's lib.sh included)."""
    return sorted(COMPONENTS.glob("*/scripts/*.sh"), key=lambda p: p.name)


@cache
def script_path(name: str) -> Path:
    found = [p for p in scripts() if p.name == name]
    if len(found) != 1:
        raise FileNotFoundError(f"host script {name!r}: expected one components/<layer>/scripts/{name}, found {len(found)}")
    return found[0]


@cache
def script_text(name: str) -> str:
    return script_path(name).read_text()


def compose(name: str, params: Mapping[str, str]) -> str:
    """The full text that runs on the host for script `name` with `params`."""
    header = f"# hybrid-ai: {name} (parameters below are set by the Pulumi program)\n"
    assignments = "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(params.items()))
    libraries = [LIB, *USES.findall(script_text(name))]
    return header + assignments + "".join(script_text(lib) for lib in libraries) + script_text(name)


def command_line(name: str, script: str, *, sudo: bool) -> str:
    """`[sudo -n] bash -c '<script>' hybrid-ai/<name>`."""
    prefix = "sudo -n bash -c " if sudo else "bash -c "
    return prefix + shlex.quote(script) + " " + shlex.quote(LABEL + name.removesuffix(".sh"))


def split_command(command: str) -> tuple[str, dict[str, str]]:
    """The inverse of `command_line` over `compose`: (script text, its parameters). Used to
    show commands in the render; shlex.split would do, but it is slow on big configs."""
    script = _script_of(command)
    body_start = script.find("#!/usr/bin/env bash")
    head = script[:body_start] if body_start > 0 else ""
    return script, {m["key"]: _unquote(m["value"]) for m in ASSIGNMENT.finditer(head)}


def _unquote(value: str) -> str:
    return value[1:-1].replace(QUOTED_QUOTE, "'") if value.startswith("'") else value


def _script_of(command: str) -> str:
    for prefix in ("sudo -n bash -c '", "bash -c '"):
        if command.startswith(prefix):
            # The label comes last; nothing inside the quotes can end like it.
            return _unquote(command[len(prefix) - 1 : command.rindex(" " + LABEL)])
    words = shlex.split(command)
    return words[words.index("-c") + 1] if "-c" in words else command


def remote_command(name: str, params: Mapping[str, pulumi.Input[str]], *, sudo: bool) -> pulumi.Input[str]:
    """The command line a remote.Command runs for script `name`."""
    if all(isinstance(v, str) for v in params.values()):
        return command_line(name, compose(name, {k: str(v) for k, v in params.items()}), sudo=sudo)
    return pulumi.Output.all(**params).apply(lambda values: command_line(name, compose(name, values), sudo=sudo))


def lint() -> int:
    """shellcheck every host script as composed (parameters, libraries, body)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for script in scripts():
            if script.parent == LIBRARIES:
                continue
            path = Path(tmp) / script.name
            path.write_text("#!/usr/bin/env bash\n" + compose(script.name, {}))
            paths.append(str(path))
        return subprocess.run(["shellcheck", "--severity=style", *paths], check=False).returncode


if __name__ == "__main__" and sys.argv[1:] == ["lint"]:
    sys.exit(lint())
