"""Read the stack's structured config, validate it, and fetch the secrets it names.

Nothing here registers a resource: `load()` either returns a complete, valid `Stack` or
raises `ConfigError` listing every problem, each prefixed with its config key path.
pydantic's own error text is reduced to location and message, so no input value (and so
no secret) is ever echoed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError

from stacks.config import StackConfig
from stacks.config.consistency import cross_checks
from stacks.config.consistency.lan import lan_path_warnings
from stacks.config.mirrors import mirror_secrets
from stacks.fetched import stack_files
from stacks.images import lock_path, mirrored, pin, pin_problems, read_files, read_lock, snap_problems
from stacks.ssh_key import passphrase_protected

NAMESPACE = "hybrid-ai"


class ConfigError(Exception):
    """The stack config is invalid; `problems` holds one line per bad key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack config:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Stack:
    """A validated config plus the secrets it references, as Pulumi secret Outputs."""

    config: StackConfig
    secrets: Mapping[str, pulumi.Output[str]]
    pins: Mapping[str, str] = field(default_factory=dict)
    """The stack's image lock (`stacks/locks/<stack>.yaml`): qualified tag reference -> digest."""
    files: Mapping[str, str] = field(default_factory=dict)
    """On a mirrored stack, each chart's and the bundle's verified local copy (stacks/fetched.py)."""

    def secret(self, key: str) -> pulumi.Output[str]:
        return self.secrets[key]

    def image(self, ref: str) -> str:
        """The image as deployed: by digest where the lock pins it."""
        return pin(ref, self.pins)


def field_keys() -> dict[str, str]:
    """Config key (camelCase alias) -> model field name, for every top-level section."""
    return {(f.alias or name): name for name, f in StackConfig.model_fields.items()}


def _models(model: type[BaseModel] = StackConfig, seen: set[type[BaseModel]] | None = None) -> set[type[BaseModel]]:
    """Every config section class reachable from `model`."""
    seen = seen if seen is not None else set()
    seen.add(model)
    for f in model.model_fields.values():
        if (inner := _model_in(f.annotation)) is not None and inner not in seen:
            _models(inner, seen)
    return seen


def default_secret_names() -> set[str]:
    """The secret config keys the schema names by default (`sshPrivateKey`, ...)."""
    return {f.default for m in _models() for n, f in m.model_fields.items() if n.endswith("_config") and isinstance(f.default, str)}


def _strings_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings_in(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def unknown_keys(keys: Iterable[str], secrets: Iterable[str], may_be_secrets: Iterable[str] = ()) -> list[str]:
    """One line per config key that is neither a section nor a secret the config names, with the
    nearest known key (case-insensitive). `may_be_secrets` are left alone without being offered."""
    fields = field_keys()
    known = sorted(set(fields) | set(secrets))
    problems = []
    for key in sorted(set(keys) - set(known) - set(may_be_secrets)):
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or difflib.get_close_matches(
            key.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
        near = next((k for k in known if k.lower() == close[0].lower()), None) if close else None
        hint = (f"did you mean `{NAMESPACE}:{near}`? Rename it, or remove it" if near
                else f"known keys are {', '.join(sorted(fields))} and the secrets the config names")
        problems.append(f"{NAMESPACE}:{key if _PLAIN_KEY.fullmatch(key) else shown(key)}: unknown config key; {hint}")
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key; the message says so
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):  # a user's mapping key (labels): quoted, short, one line
            text += f"[{shown(part)}]"
        else:
            text += f".{part}" if text else part
    return text


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./-]{1,63}")


def shown(text: str) -> str:
    """A user's key as a message may show it: JSON-quoted (so one line), at most ~40 characters."""
    quoted = json.dumps(text)
    # Escapes (control or non-BMP characters) make the quoted form longer than the text.
    while len(quoted) > 40:
        text = text[: len(text) // 2 if len(text) > 8 else len(text) - 1]
        quoted = json.dumps(text + "...")
    return quoted


_HINTS = {
    "missing": "; set it in the stack file",
    "ip_v4_network": "; write it as address/prefix with the host bits zero, prefix 0-32 (e.g. 203.0.113.0/24 or 192.0.2.7/32)",
    "greater_than_equal": "; raise it to at least that",
    "less_than_equal": "; lower it to at most that",
    "int_parsing": "; write a whole number in digits (e.g. 2)",
    "int_type": "; write a whole number in digits (e.g. 2)",
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config section class inside a field's type (`X | None`, `list[X]`, `dict[str, X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for arg in get_args(annotation) if (m := _model_in(arg)) is not None), None)


def keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section at `loc` accepts, as written in YAML; [] when `loc` is no section."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if part in (f.alias, n)), None)
        model = _model_in(field.annotation) if field is not None else None
    return [f.alias or n for n, f in model.model_fields.items()] if model is not None else []


def unknown_key_hint(key: str, known: list[str]) -> str:
    """`did you mean` the nearest known key, else the known keys."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or difflib.get_close_matches(key.lower(), [k.lower() for k in known], n=1)
    if close:
        nearest = next(k for k in known if k.lower() == close[0].lower())
        return f"did you mean `{nearest}`? Rename it, or remove it"
    return f"remove it or check its spelling; this section takes {', '.join(f'`{k}`' for k in known)}"


def format_validation_error(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors(include_input=False, include_url=False):
        msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e["type"] == "extra_forbidden" and isinstance(e["loc"][-1], str) and (known := keys_at(e["loc"][:-1])):
            msg = f"unknown key; {unknown_key_hint(e['loc'][-1], known)}"
        problems.append(f"{NAMESPACE}:{_path(e['loc'])}: {msg}{_HINTS.get(e['type'], '')}")
    return problems


def validate(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config values keyed by config key name (without namespace): each section on
    its own (the model), then the rules across sections on the built model."""
    try:
        cfg = StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
    if errors := cross_checks(cfg):
        raise ConfigError([f"{NAMESPACE}:{line}" for line in errors])
    return cfg


def namespace_problems(full_keys: Iterable[str]) -> list[str]:
    """Keys under a near-miss of the project's namespace (`hybridai:`, `hybrid_ai:`, `Hybrid-AI:`).

    Pulumi passes keys of any namespace through (providers read `openstack:...`), so such a key
    would be silently ignored and its section taken from the defaults."""
    def squash(ns: str) -> str:
        return re.sub(r"[^a-z0-9]", "", ns.lower())

    problems = []
    for key in sorted(full_keys):
        ns, _, name = key.partition(":")
        if ns != NAMESPACE and (squash(ns) == squash(NAMESPACE) or difflib.get_close_matches(ns, [NAMESPACE], cutoff=0.75)):
            if _PLAIN_KEY.fullmatch(ns) and _PLAIN_KEY.fullmatch(name):
                problems.append(f"{key}: namespace '{ns}' is not this project's; write `{NAMESPACE}:{name}`")
            else:
                problems.append(f"{shown(key)}: namespace {shown(ns)} is not this project's; write the key under `{NAMESPACE}:`")
    return problems


def _all_config_keys() -> set[str]:
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return {k.split(":", 1)[1] for k in keys if k.startswith(NAMESPACE + ":")}


def secret_keys_of(cfg: StackConfig) -> dict[str, str]:
    """Secret config key -> the config path that needs it."""
    needed: dict[str, str] = {}
    for i, h in enumerate(cfg.hosts):
        needed.setdefault(h.ssh.private_key_config, f"hosts[{i}].ssh.privateKeyConfig")
    if cfg.ingress.tls_cert_config:
        needed.setdefault(cfg.ingress.tls_cert_config, "ingress.tlsCertConfig")
    if cfg.registry is not None:
        needed.setdefault(cfg.registry.password_config, "registry.passwordConfig")
    for i, m in enumerate(cfg.models):
        for var, key in m.secret_env.items():
            needed.setdefault(key, f"models[{i}].secretEnv.{var}")
    storage = cfg.backup.object_storage
    if cfg.backup.enabled and storage is not None:
        needed.setdefault(storage.credentials_config, "backup.objectStorage.credentialsConfig")
    receiver = cfg.monitoring.alert_receiver
    if cfg.monitoring.enabled and receiver is not None and (secret := receiver.secret_key()):
        needed.setdefault(*secret)
    for path, key, _ in mirror_secrets(cfg.mirrors, [(f"sites[{i}]", s.mirrors) for i, s in enumerate(cfg.sites)]):
        needed.setdefault(key, path)
    return needed


def load() -> Stack:
    """Load and validate the current stack's config; raise ConfigError before any resource exists."""
    fields = field_keys()
    raw: dict[str, Any] = {}
    problems = namespace_problems(set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env()))
    if problems:  # alone: the sections they were meant for would only show up as missing
        raise ConfigError(problems)
    for key in fields:
        value = runtime_config.get_config(f"{NAMESPACE}:{key}")
        if value is None:
            continue
        if runtime_config.is_config_secret(f"{NAMESPACE}:{key}"):
            problems.append(f"{NAMESPACE}:{key}: holds no secret data; set it without --secret")
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        except json.JSONDecodeError:
            problems.append(f"{NAMESPACE}:{key}: is not valid YAML/JSON structured config")
    try:
        cfg = validate(raw)
    except ConfigError as err:
        # Unknown keys first: a misspelled section (`host:`) is what leaves `hosts` missing. Any
        # name the config writes, and any key set as a secret, may be a secret the (invalid)
        # config names, so only the others are named here.
        defaults = default_secret_names()
        set_as_secret = {k for k in _all_config_keys() if runtime_config.is_config_secret(f"{NAMESPACE}:{k}")}
        maybe = _strings_in(raw) | set_as_secret
        raise ConfigError(unknown_keys(_all_config_keys(), defaults, maybe) + problems + err.problems) from None

    needed = secret_keys_of(cfg)
    problems = unknown_keys(_all_config_keys(), needed) + problems
    ssh_keys = {h.ssh.private_key_config for h in cfg.hosts}
    for key, used_by in needed.items():
        full = f"{NAMESPACE}:{key}"
        if runtime_config.get_config(full) is None:
            problems.append(f"{full}: missing (needed by {used_by}); set it with `pulumi config set --secret {key} < FILE`")
        elif not runtime_config.is_config_secret(full):
            problems.append(f"{full}: is stored in plaintext; set it again with `pulumi config set --secret {key} < FILE`")
        elif key in ssh_keys and passphrase_protected(runtime_config.get_config(full) or ""):
            problems.append(f"{full}: the private key has a passphrase, which the SSH connections cannot type; use a deploy key "
                            f"without one (`ssh-keygen -t ed25519 -N '' -f ~/.ssh/hybrid-ai`, its .pub in the hosts' authorized_keys), "
                            f"then `pulumi config set --secret {key} < ~/.ssh/hybrid-ai`")
    pins: dict[str, str] = {}
    try:
        pins = read_lock(lock_path(pulumi.get_stack()))
        problems += snap_problems(cfg, read_files(lock_path(pulumi.get_stack())), pulumi.get_stack())
    except ValueError as err:
        problems.append(str(err))
    problems += pin_problems(cfg, pins, pulumi.get_stack())
    files: dict[str, str] = {}
    if not problems and mirrored(cfg):
        files, bad = stack_files(cfg, pulumi.get_stack())
        problems += bad
    if problems:
        raise ConfigError(problems)

    for warning in lan_path_warnings(cfg):
        pulumi.log.warn(warning)
    config = pulumi.Config(NAMESPACE)
    return Stack(cfg, {key: config.require_secret(key) for key in needed}, pins, files)
