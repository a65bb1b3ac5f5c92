"""What every config section is made of: the `Schema` base (camelCase keys, unknown keys
rejected, values frozen) and the value types with their strict patterns, each rejecting a bad
value with what it should be (the value itself is never echoed)."""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, IPvAnyAddress
from pydantic.alias_generators import to_camel

from components.kit.quantity import parse_quantity

IPv4Network = ipaddress.IPv4Network


DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


# Pulumi config key names as accepted by `pulumi config set` (no namespace).
CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


# A label key's prefix: a lowercase DNS subdomain (Kubernetes IsDNS1123Subdomain), at most 253.
DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


# Every pattern above is applied with fullmatch: `$` alone also matches before a final newline.
# Local or object-store paths of plain path characters; they are written into models.config.
MODEL_BASE_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")


# Node labels the program sets from the rest of the config, and the prefixes of its own
# (components/kit/kube.py NODE_LABEL_PREFIX; `hybrid-ai/` was the prefix before it).
MANAGED_LABELS = ("nvidia.com/device-plugin.config", "nvidia.com/gpu.present", "nvidia.com/mps.capable")
OWNED_LABEL_PREFIXES = ("hybrid-ai", "hybrid-ai.node-restriction.kubernetes.io")


# Services the stack always runs; models may name them in `talksTo` but not reuse the names.
BUILTIN_SERVICES = ("redis", "tf-serving")


SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


# An image reference pinned by tag or digest: "repo[:port]/path:tag", "...@sha256:<64 hex>" or
# both ("...:tag@sha256:<64 hex>": the runtime pulls the digest, the tag says what it is).
PINNED_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*(/[a-z0-9._-]+)?"
                          r"(:[A-Za-z0-9._-]{1,128}(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")


def _dns_label(value: str) -> str:
    if not DNS_LABEL.fullmatch(value):
        raise ValueError(
            "not a DNS label; use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'gpu-ws-1')"
        )
    return value


def _host_key(value: str) -> str:
    """An OpenSSH public host key line: '<type> <base64>' with an optional comment."""
    parts = value.split()
    hint = "use the host's key line as printed by `ssh-keyscan -t ed25519 HOST` without the host name, e.g. 'ssh-ed25519 AAAAC3Nza...'"
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(f"not an SSH public key line; {hint}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ValueError(f"the key is not valid base64; {hint}") from None
    # The blob is SSH strings (4-byte length, then the bytes), the key type first (RFC 4253 6.6).
    name_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + name_len].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"the key data does not match its type '{parts[0]}'; {hint}")
    fields = _ssh_strings(blob)
    if not fields or [len(f) for f in fields[1:]] != _KEY_SHAPES.get(parts[0], [len(f) for f in fields[1:]]) or (parts[0] == "ssh-rsa" and len(fields) != 3):
        raise ValueError(f"the key data is cut short or too long for its type '{parts[0]}' (copied whole?); {hint}")
    return " ".join(parts[:2])


# The lengths of the fields after the type: Ed25519's 32-byte key (RFC 8709); ECDSA's curve name
# and uncompressed point (RFC 5656 3.1). RSA's e and n vary: only their count is checked.
_KEY_SHAPES = {"ssh-ed25519": [32], "ecdsa-sha2-nistp256": [8, 65], "ecdsa-sha2-nistp384": [8, 97], "ecdsa-sha2-nistp521": [8, 133]}


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The blob split into SSH strings; [] when it does not split exactly."""
    fields, at = [], 0
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 4], "big")
        if at + 4 + size > len(blob):
            return []
        fields.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    return fields


def _wireguard_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("not a WireGuard public key; use the 44-character base64 key printed by `wg pubkey`")
    return value


def _config_key(value: str) -> str:
    if not CONFIG_KEY.fullmatch(value):
        raise ValueError("not a config key name; use letters, digits, '-' and '_' (e.g. 'sshPrivateKey')")
    return value


def _unscoped(value: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # Python accepts any text as an IPv6 zone ('fe80::1%<anything>'), newlines included.
    if getattr(value, "scope_id", None) is not None:
        raise ValueError("scoped IPv6 addresses ('%zone') are not supported; give the address without its zone")
    return value


def _hostname_or_ip(value: str) -> str:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        addr = None
    if addr is not None:
        _unscoped(addr)
        return value
    # A name of digits and dots only is a mistyped address (`192.168.10.310`), never a host name.
    if not HOSTNAME.fullmatch(value) or re.fullmatch(r"[\d.]+", value):
        raise ValueError("neither an IP address nor a host name; use e.g. '203.0.113.10' or 'host.example.com'")
    return value


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (prefix and not DNS_SUBDOMAIN.fullmatch(prefix)) or not LABEL_NAME.fullmatch(name):
        raise ValueError("not a Kubernetes label key; use [prefix/]name: prefix a lowercase DNS subdomain, "
                         "name up to 63 of [A-Za-z0-9-_.] starting and ending alphanumeric (e.g. 'example.com/team')")
    if prefix in OWNED_LABEL_PREFIXES or value in MANAGED_LABELS:
        raise ValueError(f"'{value}' is set by hybrid-ai itself; remove it")
    return value


def _label_value(value: str) -> str:
    if value and not LABEL_NAME.fullmatch(value):
        raise ValueError("not a Kubernetes label value; up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric")
    return value


def _pinned_image(value: str) -> str:
    if not PINNED_IMAGE.fullmatch(value) or value.endswith(":latest"):
        raise ValueError(
            "image not pinned; add a version tag other than 'latest' or a digest "
            "(e.g. 'ghcr.io/acme/receipt-api:1.4.2' or '...@sha256:<digest>')"
        )
    return value


def _model_base_path(value: str) -> str:
    # TF-Serving 2.18.0 links only TF's GCS file system (tensorflow_serving/model_servers/BUILD):
    # an s3:// model never loads, and TF-Serving opens no port until every model has.
    if value.startswith("s3://"):
        raise ValueError("TF-Serving 2.18 has no S3 file system (S3 left TensorFlow for tensorflow-io), so the model would "
                         "never load; use '/models/<name>' with `source` and `sha256` (an HTTPS .tar.gz of the version)")
    if value.startswith("gs://"):
        raise ValueError("TF-Serving reads gs:// only with Google credentials, which the program does not pass to it; use "
                         "'/models/<name>' with `source` and `sha256` (an HTTPS .tar.gz of the version)")
    if not MODEL_BASE_PATH.fullmatch(value) or ".." in value.split("/"):
        raise ValueError("not a model path; use '/models/<name>' "
                         "with letters, digits, '.', '_', '-' between slashes and no '..'")
    return value


def strict(pattern: str, what: str) -> AfterValidator:
    """A value that must fully match `pattern`, rejected with `what` it should be (never echoed)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(what)
        return value
    return AfterValidator(check)


DnsLabel = Annotated[str, AfterValidator(_dns_label)]


HostKey = Annotated[str, AfterValidator(_host_key)]


WireGuardPublicKey = Annotated[str, AfterValidator(_wireguard_key)]


ConfigKeyName = Annotated[str, AfterValidator(_config_key)]


HostAddress = Annotated[str, AfterValidator(_hostname_or_ip)]


PinnedImage = Annotated[str, AfterValidator(_pinned_image)]


LabelKey = Annotated[str, AfterValidator(_label_key)]


LabelValue = Annotated[str, AfterValidator(_label_value)]


Port = Annotated[int, Field(ge=1, le=65535)]


IpAddress = Annotated[IPvAnyAddress, AfterValidator(_unscoped)]


ModelBasePath = Annotated[str, AfterValidator(_model_base_path)]


SshUser = Annotated[str, strict(r"[a-z_][a-z0-9_-]{0,31}", "not a login name; use up to 32 of lowercase letters, digits, '_' and '-', starting with a letter or '_' (e.g. 'ubuntu')")]


Email = Annotated[str, strict(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+", "not an e-mail address; use e.g. 'ops@example.com'")]
StorageClassName = Annotated[str, strict(DNS_SUBDOMAIN.pattern, "not a storage class name; use a lowercase DNS subdomain (e.g. 'microk8s-hostpath')")]


def quantity(what: str) -> AfterValidator:
    """A Kubernetes quantity above zero, as Kubernetes reads it (components/kit/quantity.py)."""
    def check(value: str) -> str:
        try:
            size = parse_quantity(value)
        except ValueError:
            raise ValueError(what) from None
        if size <= 0:
            raise ValueError(f"must be more than zero; {what.split('; ', 1)[-1]}")
        return value
    return AfterValidator(check)


def number_as_text(value: object) -> object:
    # YAML reads `cpu: 2` or `cpu: 0.5` as numbers; Kubernetes takes them as quantities too.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


MEMORY_WORDS = "not a memory size; write a number and a unit as Kubernetes does, e.g. '512Mi', '16Gi' or '16G' (Ki, Mi, Gi, Ti: powers of 1024; k, M, G, T: of 1000)"
class Named(str):
    """What the config reference (tools/docs.py) calls a value type; pydantic ignores it."""


Memory = Annotated[str, BeforeValidator(number_as_text), quantity(MEMORY_WORDS), Named("Kubernetes quantity (bytes), e.g. `16Gi`")]
Cpu = Annotated[str, BeforeValidator(number_as_text), Named("Kubernetes quantity (cores), e.g. `500m`"),
                quantity("not a CPU amount; write cores or millicores as Kubernetes does, e.g. '2', '0.5' or '500m'")]


class Schema(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=True
    )
