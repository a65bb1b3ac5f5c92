"""Read `Pulumi.<stack>.yaml` as the Pulumi CLI would hand it to the program, without the CLI.

The CLI refuses a stack file with a YAML error, a duplicate key or a config key that is not
`<namespace>:<name>`; so does this reader, with one line per problem (`file:line: ...`) and
no traceback. `secure:` values (what `pulumi config set --secret` writes) are never
decrypted: they become placeholders, marked secret.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml

from stacks.load import NAMESPACE, ConfigError, namespace_problems, shown, unknown_key_hint

# The top-level keys of a stack file (Pulumi's workspace.ProjectStack); any other is dropped by
# the CLI without a word, so `configs:` would leave every section at its default or missing.
STACK_FILE_KEYS = ["config", "encryptionsalt", "encryptedkey", "secretsprovider", "environment"]


def placeholder(full_key: str) -> str:
    """A stand-in for a secret the render cannot decrypt. PEM-shaped, so that a TLS bundle
    (`tls: byo`) splits into a certificate and a key like a real one would."""
    body = base64.b64encode(f"placeholder for {full_key}".encode()).decode()
    return "".join(f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n" for kind in ("CERTIFICATE", "PRIVATE KEY"))


def _duplicates(node: yaml.Node, name: str, ancestors: tuple[int, ...] = ()) -> list[str]:
    """Every mapping key written twice, anywhere in the document (YAML requires unique keys),
    and every alias that contains itself (it would never end)."""
    if id(node) in ancestors:
        return [f"{name}:{node.start_mark.line + 1}: an alias refers to a node that contains it; write the value out"]
    inner = (*ancestors, id(node))
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in first:
                    problems.append(f"{name}:{line}: key {shown(key.value)} is written twice (first at line {first[key.value]}); "
                                    "keep one, YAML keys must be unique and nothing is merged")
                first.setdefault(key.value, line)
            problems += _duplicates(value, name, inner)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicates(item, name, inner)
    return problems


# What PyYAML says when a line is indented more or less than the mapping or list it belongs to.
_INDENTATION = ("expected <block end>", "mapping values are not allowed here", "did not find expected key",
                "could not find expected ':'", "did not find expected '-' indicator")


def yaml_problem(name: str, text: str, err: yaml.MarkedYAMLError) -> str:
    """One line for a YAML error: file:line and what to fix, in words for the usual indentation slips."""
    mark = err.problem_mark or err.context_mark
    if mark is None:
        return f"{name}: not valid YAML ({err.problem or err.context}); fix the syntax"
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    where = f"{name}:{mark.line + 1}"
    if "\t" in line[: len(line) - len(line.lstrip())] or "character '\\t'" in str(err.problem):
        return f"{where}: a tab in the indentation; YAML indents with spaces only, replace it with spaces"
    if any(str(err.problem).startswith(p) for p in _INDENTATION):
        above = next((lines[i] for i in range(mark.line - 1, -1, -1) if lines[i].strip() and not lines[i].lstrip().startswith("#")), "")
        own, theirs = len(line) - len(line.lstrip()), len(above) - len(above.lstrip(" -"))
        return (f"{where}: indentation: this line starts at column {own + 1}, the key above it at column {theirs + 1}; "
                "keys of one mapping start in the same column (spaces only), and a value on its own line goes further in than its key")
    return f"{where}: not valid YAML ({err.problem or err.context}); fix the syntax there"


def read_document(path: Path) -> dict[str, Any]:
    """The stack file as plain data; ConfigError (file:line) when it is not a valid stack file."""
    name = path.name
    try:
        node = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
        if node is None:
            return {}
        if problems := _duplicates(node, name):
            raise ConfigError(problems)
        doc = yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as err:
        raise ConfigError([yaml_problem(name, path.read_text(), err)]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{name}: not valid YAML ({type(err).__name__}); fix the syntax"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: not UTF-8 text; save it as UTF-8"]) from None
    if not isinstance(doc, dict):
        raise ConfigError([f"{name}:{node.start_mark.line + 1}: the file is a {type(doc).__name__}, not a mapping; "
                           "a stack file is a mapping with a `config:` key"])
    if strangers := [(k, n) for k, n in node.value if getattr(k, "value", None) not in STACK_FILE_KEYS]:
        raise ConfigError([f"{name}:{k.start_mark.line + 1}: unknown top-level key {shown(str(k.value))}; "
                           f"{unknown_key_hint(str(k.value), STACK_FILE_KEYS)}" for k, _ in strangers])
    config = doc.get("config")
    if config is not None and not isinstance(config, dict):
        line = next((k.start_mark.line + 1 for k, _ in node.value if getattr(k, "value", None) == "config"), 1)
        raise ConfigError([f"{name}:{line}: `config` is a {type(config).__name__}, not a mapping; "
                           f"write `config:` then one `{NAMESPACE}:<key>: <value>` per line"])
    return doc


def _mask_secure(value: Any, full: str) -> tuple[Any, bool]:
    """`value` with each nested `{secure: ...}` replaced by a placeholder; True when there was one."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return placeholder(full), True
        pairs = {k: _mask_secure(v, full) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_mask_secure(v, full) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def stack_file_config(path: Path) -> tuple[dict[str, str], set[str]]:
    """Config values (strings, structured ones as JSON) and the secret keys of a stack file."""
    config: dict[str, str] = {}
    secret: set[str] = set()
    problems: list[str] = []
    for key, value in (read_document(path).get("config") or {}).items():
        # Pulumi's config.ParseKey: `<namespace>:<name>` or `<namespace>:config:<name>`, nothing else.
        parts = str(key).split(":")
        if len(parts) == 3 and parts[1] == "config":
            parts = [parts[0], parts[2]]
        if len(parts) != 2 or not all(parts):
            problems.append(f"{path.name}: config key {shown(str(key))} is not `<namespace>:<name>`; write it as `{NAMESPACE}:<name>`")
            continue
        full = ":".join(parts)
        masked, is_secret = _mask_secure(value, full)
        if is_secret:
            secret.add(full)
        config[full] = masked if isinstance(masked, str) else json.dumps(masked)
    problems += namespace_problems(config)
    if problems:
        raise ConfigError(problems)
    return config, secret


def raw_stack_config(path: Path) -> dict[str, Any]:
    """The project's keys of a stack file as plain data, namespace stripped (the schema's view;
    provider keys such as `openstack:cloud` are not the program's)."""
    config = read_document(path).get("config") or {}
    return {k.removeprefix(f"{NAMESPACE}:"): v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
