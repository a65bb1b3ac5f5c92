"""Generate docs/config.md, the config reference, from the schema (`make docs`)."""

from __future__ import annotations

import enum
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stacks.config import StackConfig
from stacks.config.types import Named
from stacks.load import NAMESPACE

HEADER = """# Stack config reference

Generated from `stacks/config/` by `make docs`; do not edit by hand (a test checks it).
Each section is one config key in `Pulumi.<stack>.yaml`, e.g. `{ns}:hosts`. Keys are
camelCase; unknown keys are rejected. Secrets are not part of these sections: hosts name
the secret config key that holds their SSH private key (`ssh.privateKeyConfig`, default
`sshPrivateKey`), set with `pulumi config set --secret sshPrivateKey < ~/.ssh/hybrid-ai`
(a deploy key without a passphrase: `ssh-keygen -t ed25519 -N '' -f ~/.ssh/hybrid-ai`).
"""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


# Value types by what they are, not by their Python class.
_NAMES = {"str": "string", "int": "integer", "bool": "boolean", "IPv4Network": "IPv4 network (CIDR)",
          "IPv4Address": "IPv4 address", "IPvAnyAddress": "IP address"}


def _anchor(path: str) -> str:
    r"""GitHub's anchor of a `## \`path\`` heading: lowercase, punctuation but '-' dropped."""
    return "".join(c for c in path.lower() if c.isalnum() or c in "-_")


def _type_name(annotation: Any, where: str = "") -> str:
    """The type in words; a nested section links to its own table (`where` is its key path)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        named = [m for m in annotation.__metadata__ if isinstance(m, Named)]
        return str(named[0]) if named else _type_name(typing.get_args(annotation)[0], where)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a, where) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0], where)}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map of {_type_name(key)} to {_type_name(value, where)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[`{where}`](#{_anchor(where)})" if where else annotation.__name__
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type):
        return _NAMES.get(annotation.__name__, annotation.__name__)
    raise TypeError(f"docs: no words for the type {annotation!r}; resolve it in the schema (a forward reference?)")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        origin = typing.get_origin(field.annotation)
        return {list: "`[]`", dict: "`{}`"}.get(origin, "its keys' defaults") if origin else "its keys' defaults"
    if field.default is None or field.default is PydanticUndefined:
        return "unset"
    value = getattr(field.default, "value", field.default)
    if value == "":
        return '`""`'  # an empty code span would show nothing
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _section(model: type[BaseModel], path: str, out: list[str], seen: set[str]) -> None:
    out += [f"\n## `{path}`\n", (model.__doc__ or "").strip().split("\n")[0] + "\n" if model.__doc__ and model is not StackConfig else ""]
    out += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub_path = f"{path}.{key}" if path else key
        named = [m for m in field.metadata if isinstance(m, Named)]  # pydantic moves a field's Annotated metadata here
        kind = str(named[0]) if named else _type_name(field.annotation, sub_path)
        out.append(f"| `{key}` | {kind} | {_default(field)} | {field.description or ''} |")
        for sub in _models_in(field.annotation):
            nested.append((sub, f"{path}.{key}" if path else key))
    for sub, sub_path in nested:
        if sub_path not in seen:
            seen.add(sub_path)
            _section(sub, sub_path, out, seen)


def render() -> str:
    out = [HEADER.format(ns=NAMESPACE)]
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        out.append(f"\n# `{NAMESPACE}:{key}`\n\n{field.description} Default: {_default(field)}.\n")
        for model in _models_in(field.annotation):
            _section(model, key, out, set())
    return "\n".join(line for line in out if line is not None) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Replace `path` with `text` in one step (a reader never sees it half-written), only when
    it differs: an unchanged file is left alone."""
    if path.exists() and path.read_text() == text:
        return False
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return True


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        target = Path(sys.argv[2])
        print(f"{target}: {'regenerated' if write_if_changed(target, render()) else 'up to date'}")
    else:
        sys.stdout.write(render())
