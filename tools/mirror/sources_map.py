"""Where `make mirror` fetches each artifact: its upstream location, or a replacement the operator
gives (`SOURCES="docker.io=https://proxy.corp:5000/docker.io charts.jetstack.io=..."`: a pull-
through proxy, a staging copy; the lab's stand-in upstreams). A source maps the longest prefix
of an artifact's location (an image's `registry/repository`, a URL without its scheme) to a URL.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

CRANE = Path(__file__).resolve().parents[2] / ".engine" / "bin" / "crane"


def parse(sources: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in (word for s in sources for word in s.split()):
        prefix, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise ValueError(f"SOURCES: {prefix or item!r} is not `<prefix>=<http(s) URL>`")
        out[prefix.rstrip("/")] = url.rstrip("/")
    return out


def locate(location: str, sources: Mapping[str, str]) -> str:
    """The URL (for files) or `host/path` (for images, with a scheme when a source gives one)
    where `location` is fetched from."""
    bare = location.split("://", 1)[-1]
    for prefix in sorted(sources, key=len, reverse=True):
        if bare == prefix or bare.startswith(prefix + "/"):
            return sources[prefix] + bare[len(prefix):]
    return location


def crane(*args: str, ref: str) -> str:
    """Run crane on `ref` (an image location from `locate`): `--insecure` for a plain-HTTP source."""
    if not CRANE.exists():
        raise RuntimeError(f"{CRANE} is missing; run `make engine` (it builds crane from its Go module)")
    insecure = ["--insecure"] if ref.startswith("http://") else []
    target = ref.split("://", 1)[-1]
    result = subprocess.run([str(CRANE), *args[:1], *insecure, target, *args[1:]], capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"crane {args[0]} {target}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return result.stdout.strip()
