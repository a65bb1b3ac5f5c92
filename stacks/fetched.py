"""The charts and the Gateway API bundle of a mirrored stack, fetched by the program and checked
against the sha256 its lock pins before Helm or the provider ever reads them.

pulumi-kubernetes fetches a chart named by repository or `oci://` reference itself (Helm's
LocateChart, in the provider) and `yaml/v2.ConfigFile` reads its `file` itself: neither checks a
digest, so a check can only hold where the program fetches the file. On a mirrored stack the
program fetches each one here, in `load()` before any resource is registered, verifies it, and
hands the provider the verified local copy (`build/verified/<sha256>/<name>`, a path Helm and the
provider read as a local chart and a local file). The lock (`stacks/locks/<stack>.yaml`,
`files:`) names each artifact as `make mirror LAYOUT=` lays it out:

    files:
      charts/traefik-41.3.0.tgz: sha256:<64 hex digits>
      gateway-api/v1.5.1/standard-install.yaml: sha256:<64 hex digits>

Under the offline render (mocks) nothing is fetched: a URL's verified path is named unchecked;
a local bundle file is still checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import yaml
from pulumi.runtime import mocks, settings

from stacks.charts import BUNDLE, chart_artifact, gateway_api_crds, pinned
from stacks.config import StackConfig
from stacks.images import charts_used, lock_path, read_files

VERIFIED = Path("build") / "verified"  # under the project, where Pulumi runs the program: the same path on every machine
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def wanted(cfg: StackConfig, charts: list[str]) -> dict[str, str]:
    """{artifact name: where the program fetches it} for these charts and the bundle."""
    out = {}
    for name in charts:
        out[chart_artifact(name)] = cfg.sources.charts or pinned(name).repository
    out[BUNDLE] = gateway_api_crds(cfg.sources)
    return out


def _get(url: str, headers: Mapping[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=120) as response:
        data: bytes = response.read()
    return data


def _registry_auth(host: str) -> dict[str, str]:
    """Basic credentials `helm registry login` stored for this registry, if any."""
    config = Path(os.environ.get("HELM_REGISTRY_CONFIG", Path.home() / ".config" / "helm" / "registry" / "config.json"))
    if not config.is_file():
        return {}
    auth = (json.loads(config.read_text()).get("auths") or {}).get(host, {}).get("auth")
    return {"Authorization": f"Basic {auth}"} if auth else {}


def _oci_chart(reference: str, version: str) -> bytes:
    """The chart layer of `oci://host/path/chart:version`, through the registry's HTTP API."""
    host, _, path = reference.removeprefix("oci://").partition("/")
    base, headers = f"https://{host}/v2/{path}", _registry_auth(host)
    doc = json.loads(_get(f"{base}/manifests/{version}", {**headers, "Accept": OCI_MANIFEST}))
    layer = next((item for item in doc.get("layers", []) if item.get("mediaType") == HELM_CHART), None)
    if layer is None:
        raise ValueError(f"{reference}:{version} holds no Helm chart layer")
    return _get(f"{base}/blobs/{layer['digest']}", headers)


def fetch(name: str, source: str) -> bytes:
    """The artifact's bytes from its source: a chart from a Helm repository or OCI registry, the
    bundle from a URL or a local file."""
    if not name.startswith("charts/"):
        return _get(source) if "://" in source else Path(source).expanduser().read_bytes()
    chart_name, version = name.removeprefix("charts/").removesuffix(".tgz").rsplit("-", 1)
    if source.startswith("oci://"):
        return _oci_chart(f"{source.rstrip('/')}/{chart_name}", version)
    index = yaml.safe_load(_get(f"{source.rstrip('/')}/index.yaml")) or {}
    entry = next((e for e in (index.get("entries") or {}).get(chart_name, []) if str(e.get("version")) == version), None)
    if entry is None:
        raise ValueError(f"{source}/index.yaml lists no {chart_name} {version}")
    return _get(urllib.parse.urljoin(source.rstrip("/") + "/", entry["urls"][0]))


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def offline() -> bool:
    """Whether the program runs under the offline render's mocks (which reach no network)."""
    return isinstance(settings.SETTINGS.monitor, mocks.MockMonitor)


def verified(wants: Mapping[str, str], pins: Mapping[str, str], *, offline: bool = False) -> tuple[dict[str, str], list[str]]:
    """({artifact: verified local path}, one problem line per artifact missing or not matching)."""
    paths, problems = {}, []
    for name, source in wants.items():
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{name}: no sha256 for it in the stack's lock (`files:`); run `make mirror RESOLVE=1` on a connected machine")
            continue
        local = VERIFIED / pin.removeprefix("sha256:") / name.rsplit("/", 1)[-1]
        if local.is_file() and digest(local.read_bytes()) == pin:
            paths[name] = str(local)
            continue
        if offline and "://" in source:
            paths[name] = str(local)
            continue
        try:
            data = fetch(name, source)
        except (OSError, ValueError, urllib.error.URLError) as err:
            problems.append(f"{name}: cannot fetch it from {source}: {err}")
            continue
        if digest(data) != pin:
            problems.append(f"{name}: what {source} serves has sha256 {digest(data)}, not the {pin} the stack's lock pins; "
                            "refusing it (find out who changed it, or lock the new one with `make mirror RESOLVE=1`)")
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        paths[name] = str(local)
    return paths, problems


def stack_files(cfg: StackConfig, stack: str) -> tuple[dict[str, str], list[str]]:
    """A mirrored stack's charts and bundle, fetched and checked against its lock: (paths, problems)."""
    try:
        files, bad = verified(wanted(cfg, charts_used(cfg)), read_files(lock_path(stack)), offline=offline())
    except ValueError as err:
        return {}, [str(err)]
    return files, [f"stacks/locks/{stack}.yaml: {p}" for p in bad]
