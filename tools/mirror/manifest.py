"""The mirror manifest of a stack: every artifact its hosts and the operator fetch, read from the
plan itself (the same registrations `make render` writes), so it cannot drift from what runs.

- images: every `image` of the rendered manifests and of the charts' values, each chart's own
  images (charts/<name>/chart.yaml `images:`, by digest where the stack's lock pins them) and
  MicroK8s' own images for the channel (stacks/images.py), fully qualified;
- charts: each chart with its version and repository;
- bundles: the Gateway API bundle (and any other file the operator applies);
- snaps: snapd, MicroK8s' base and MicroK8s per host: the files (with the sha3-384 the stack's
  lock pins for each), or the channel;
- apt: per host, the packages installed from apt (dependencies resolve on the mirror: the host's
  preflight checks them with apt itself);
- files: model files the pods download.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from components.cluster.nvidia import TOOLKIT_PACKAGES, driver_packages
from components.kit.shell import split_command
from stacks.charts import CHARTS, GATEWAY_API_CRDS, chart_images, pinned
from stacks.config.mirrors import qualified
from stacks.images import MICROK8S_IMAGES
from tools.render.evaluate import Evaluation, Secret
from tools.render.plan import redact, reveal

FILE = "mirror-manifest.json"
"""Its name in a render's artifacts."""
CHART_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def _walk(doc: Any, key: str) -> Iterator[Any]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(doc, list):
        for item in doc:
            yield from _walk(item, key)


def _images(doc: Any) -> Iterator[str]:
    for value in _walk(doc, "image"):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict) and isinstance(value.get("repository"), str):  # charts' {repository, tag}
            repo = value["repository"] if "registry" not in value else f"{value['registry']}/{value['repository']}"
            if value.get("tag"):
                yield f"{repo}:{value['tag']}"


def _value(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def _chart_images(chart: str, values: Any) -> list[str]:
    """The chart's own images (charts/<name>/chart.yaml), by digest where the values pin them."""
    found = []
    for c in chart_images(chart) or []:
        pinned_value = _value(values, c.path)
        if not isinstance(pinned_value, str) or (c.form == "tag" and "@" not in pinned_value):
            found.append(c.image)
        elif c.form == "tag":
            found.append(f"{c.image.rsplit(':', 1)[0]}:{pinned_value}")
        else:
            found.append(f"{c.image}@sha256:{pinned_value.removeprefix('sha256:')}")
    return found


def _upstream_repository(chart: str) -> str | None:
    """Where the pinned chart comes from upstream (what to copy to the site's chart source)."""
    return next((pinned(p.parent.name).repository for p in CHARTS.glob("*/chart.yaml") if pinned(p.parent.name).chart == chart), None)


def _host_names(ev: Evaluation) -> dict[str, str]:
    """SSH address -> host name, from the first `<name>-reachable` probe dialing it: built once,
    since a scan of every command per command was quadratic in a large office's hosts."""
    names: dict[str, str] = {}
    for r in ev.of_type("command:remote:Command"):
        if r.name.endswith("-reachable"):
            names.setdefault(str(reveal(r.inputs["connection"])["host"]), r.name.removesuffix("-reachable"))
    return names


def _host_of(names: dict[str, str], connection: Any) -> str:
    host = str(reveal(connection).get("host"))
    return names.get(host, host)


def _params(r: Any) -> dict[str, str]:
    create = r.inputs.get("create")
    return {} if create is None or isinstance(create, Secret) else split_command(create)[1]


def _with_sha3(snaps: list[dict[str, str]], sha3: dict[str, str]) -> list[dict[str, str]]:
    """Each snap file's entry with the sha3-384 the stack's lock pins for it."""
    return [{**s, "sha3-384": sha3[s["file"].removesuffix(".snap")]} if s.get("file", "").removesuffix(".snap") in sha3 else s for s in snaps]


def manifest(ev: Evaluation) -> dict[str, Any]:
    images: set[str] = set()
    charts: list[dict[str, Any]] = []
    bundles: list[Any] = []
    files: set[str] = set()
    for r in ev.resources:
        if not r.type.startswith("kubernetes:"):
            continue
        inputs = redact(r.inputs)
        if r.type in CHART_TYPES:
            repository = (inputs.get("repositoryOpts") or {}).get("repo") or str(inputs["chart"]).rsplit("/", 1)[0]
            name, version = str(inputs["chart"]).rsplit("/", 1)[-1], inputs.get("version")
            if name.endswith(".tgz"):  # a verified local copy (stacks/fetched.py): `<chart>-<version>.tgz`
                name, version = name.removesuffix(".tgz").rsplit("-", 1)
            charts.append({"chart": name, "version": version, "repository": repository, "upstream": _upstream_repository(name)})
            images.update(_images(inputs.get("values", {})))
            images.update(_chart_images(charts[-1]["chart"], inputs.get("values", {})))
        elif r.type.startswith("kubernetes:yaml/"):
            bundles += [inputs[k] for k in ("file", "files", "url") if k in inputs]
        elif r.custom:
            images.update(_images(inputs))
            for env in _walk(inputs, "env"):
                files.update(e["value"] for e in env if isinstance(e, dict) and e.get("name") == "SOURCE" and e.get("value"))
    hosts: dict[str, dict[str, Any]] = {}
    names = _host_names(ev)
    sha3: dict[str, str] = {}  # `<snap>_<rev>` -> its pinned sha3-384 (the mirror steps' SNAP_SHA3_384)
    for r in ev.of_type("command:remote:Command"):
        p = _params(r)
        entry = hosts.setdefault(_host_of(names, r.inputs["connection"]), {"apt": [], "snaps": []})
        if r.name.endswith("-bootstrap-mirrors"):
            sha3.update(pin.partition("=")[::2] for pin in p.get("SNAP_SHA3_384", "").split())
            if p.get("DRIVER_BRANCH"):
                entry["driver"] = driver_packages(p["DRIVER_BRANCH"], p["KERNEL_FLAVOUR"])  # what the preflight checks
        elif r.name.endswith("-bootstrap-base"):
            entry["apt"] += p.get("PACKAGES", "").split()
        elif r.name.endswith(("-firewall-rules", "-agent-guard")):
            entry["apt"].append("nftables")  # firewall-apply.sh and agent-guard-apply.sh install it where missing
        elif p.get("BACKUP_S3") == "yes":
            entry["apt"].append("s3cmd")  # datastore-backup-install.sh, for object storage
        elif r.name.endswith("-gpu-setup"):
            if p.get("INSTALL_TOOLKIT") == "true":
                entry["apt"] += [f"{n}={p['TOOLKIT_VERSION']}" for n in TOOLKIT_PACKAGES]
            if p.get("INSTALL_DRIVER") == "true":  # a site with no apt mirror: what ubuntu-drivers picks on the host
                entry["internet_driver"] = [f"nvidia-driver-{p['DRIVER_VERSION']}" if p.get("DRIVER_VERSION") else "(the driver ubuntu-drivers recommends)",
                                            "(its linux-modules-nvidia for the host's kernel)"]
        elif r.name.endswith("-microk8s") and "CHANNEL" in p:
            images.update(MICROK8S_IMAGES.get(p["CHANNEL"].split("/", 1)[0], ()))
            entry["snaps"] = [{"file": f"{s}.snap", "assertion": f"{s}.assert"} for s in p.get("SNAP_FILES", "").split()] \
                or [{"snap": "microk8s", "channel": p["CHANNEL"]}]
    for h in hosts.values():
        h["snaps"] = _with_sha3(h["snaps"], sha3)
    return {
        "stack": ev.stack,
        "images": sorted(qualified(i) for i in images),
        "charts": sorted(charts, key=lambda c: str(c["chart"])),
        "bundles": [{"source": str(b), "upstream": GATEWAY_API_CRDS} for b in sorted(bundles)],
        "files": sorted(files),
        "hosts": {name: {"apt": sorted(set(h["apt"] + (h.get("driver") or h.get("internet_driver") or []))), "snaps": h["snaps"]}
                  for name, h in sorted(hosts.items()) if h["apt"] or h["snaps"]},
    }
