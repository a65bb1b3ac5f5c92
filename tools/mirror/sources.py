"""Find every internet source a rendered stack's artifacts name: what a host script or manifest
would fetch from outside the site's mirrors.

A URL is fine when its host is one of the stack's mirrors, the stack's own domain, or inside the
cluster or the site (private and documentation addresses, `.svc`, `.cluster.local`, `.lan`); an
image is fine when its registry has a mirror on every site running cluster nodes (containerd
resolves it there); a well-known internet host named anywhere else is a finding.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from stacks.config import StackConfig
from stacks.config.mirrors import registry_of
from tools.mirror.manifest import FILE as MANIFEST

URL = re.compile(r"\b(?:https?|oci)://([A-Za-z0-9.-]+)")
# Hosts the program or its charts reach by default (and their usual spellings).
INTERNET_HOSTS = (
    "archive.ubuntu.com", "security.ubuntu.com", "ports.ubuntu.com", "developer.download.nvidia.com", "nvidia.github.io",
    "api.snapcraft.io", "snapcraft.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "registry-1.docker.io",
    "ghcr.io", "nvcr.io", "quay.io", "github.com", "githubusercontent.com", "charts.jetstack.io", "traefik.github.io",
    "prometheus-community.github.io", "letsencrypt.org",
)
BARE = re.compile(r"(?<![A-Za-z0-9.-])(" + "|".join(re.escape(h) for h in INTERNET_HOSTS) + r")(?![A-Za-z0-9-])")
# Host script parameters that name upstream registries as names, never as places to fetch from.
NAMING_PARAMS = re.compile(r"^(REGISTRIES|CREDENTIAL_KEYS|IMAGES)=.*$", re.M)
LOCAL_SUFFIXES = (".svc", ".cluster.local", ".lan", ".internal", ".local", "localhost")


def allowed_hosts(cfg: StackConfig) -> set[str]:
    hosts = cfg.mirrors.registry_hosts() | {h for s in cfg.sites if s.mirrors for h in s.mirrors.registry_hosts()}
    if cfg.ingress.domain:
        hosts.add(cfg.ingress.domain)
    return hosts


def mirrored_registries(cfg: StackConfig) -> set[str]:
    """Registries with a mirror on every site that runs cluster nodes."""
    sites = {h.site for h in cfg.hosts if h.in_cluster}
    sets = [{r.upstream for r in (cfg.site(s).mirrors or cfg.mirrors).registries} for s in sites]
    return set.intersection(*sets) if sets else set()


def _local(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(LOCAL_SUFFIXES)
    doc = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10")]
    return addr.is_private or addr.is_loopback or any(addr in n for n in doc)


def _images(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _images(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _images(item)


def findings(artifacts: Path, cfg: StackConfig) -> list[str]:
    """`<file>: <what>` for every internet source the artifacts name."""
    ok_hosts, registries = allowed_hosts(cfg), mirrored_registries(cfg)
    found = []
    # The mirror manifest lists what to carry in, by its upstream names: nothing fetches from it.
    for path in sorted(p for p in artifacts.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(artifacts).as_posix()
        text = path.read_text(errors="replace")
        if path.suffix == ".yaml" and rel.startswith("kubernetes"):
            for image in _images(yaml.safe_load(text)):
                if registry_of(image) not in registries:
                    found.append(f"{rel}: image {image} from {registry_of(image)}, which has no mirror")
            text = re.sub(r"^(\s*-?\s*image:).*$", r"\1", text, flags=re.M)
        text = NAMING_PARAMS.sub("", text)
        for match in URL.finditer(text):
            host = match.group(1).rstrip(".")
            if host not in ok_hosts and not _local(host):
                found.append(f"{rel}: {match.group(0)}")
        for match in BARE.finditer(URL.sub("", text)):
            found.append(f"{rel}: names {match.group(1)}")
    return found
