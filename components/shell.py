"""Turn a script from `components/scripts/` plus parameters into one remote command.

Parameters become shell-quoted variable assignments above the script body, so no value is
ever pasted into shell code. Secrets never go here: pass them on the command's stdin.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pulumi

SCRIPTS = Path(__file__).parent / "scripts"


@cache
def script_text(name: str) -> str:
    return (SCRIPTS / name).read_text()


def _assignments(params: Mapping[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(params.items()))


def script_with_params(name: str, params: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    """The script body with its parameters assigned at the top (readable in the render)."""
    header = f"# hybrid-ai: {name} (parameters below are set by the Pulumi program)\n"
    if not params:  # Output.all() of nothing resolves to a list, not a dict
        return pulumi.Output.from_input(header + script_text(name))
    return pulumi.Output.all(**params).apply(lambda values: header + _assignments(values) + script_text(name))


def remote_command(name: str, params: Mapping[str, pulumi.Input[str]], *, sudo: bool) -> pulumi.Output[str]:
    """`[sudo -n] bash -c '<script>' <name>`: the command line a remote.Command runs."""
    prefix = "sudo -n bash -c " if sudo else "bash -c "
    label = " " + shlex.quote("hybrid-ai/" + name.removesuffix(".sh"))
    return script_with_params(name, params).apply(lambda text: prefix + shlex.quote(text) + label)
