"""Generate docs/config.md, the config reference, from the schema (`make docs`)."""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stacks.config import StackConfig
from stacks.load import NAMESPACE

HEADER = """# Stack config reference

Generated from `stacks/config/` by `make docs`; do not edit by hand (a test checks it).
Each section is one config key in `Pulumi.<stack>.yaml`, e.g. `{ns}:hosts`. Keys are
camelCase; unknown keys are rejected. Secrets are not part of these sections: hosts name
the secret config key that holds their SSH private key (`ssh.privateKeyConfig`, default
`sshPrivateKey`), set with `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`.
"""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map of {_type_name(key)} to {_type_name(value)}"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "bool": "boolean"}.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        origin = typing.get_origin(field.annotation)
        return {list: "`[]`", dict: "`{}`"}.get(origin, "(see section)") if origin else "(see section)"
    if field.default is None or field.default is PydanticUndefined:
        return "unset"
    value = getattr(field.default, "value", field.default)
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _section(model: type[BaseModel], path: str, out: list[str], seen: set[str]) -> None:
    out += [f"\n## `{path}`\n", (model.__doc__ or "").strip().split("\n")[0] + "\n" if model.__doc__ and model is not StackConfig else ""]
    out += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {field.description or ''} |")
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


if __name__ == "__main__":
    sys.stdout.write(render())
