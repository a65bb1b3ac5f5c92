"""Every image the render deploys is pinned by digest on a mirrored stack: a tag-only image (the
catalog's, the program's own, a chart's) refuses the render in one line naming it and the fix;
the stack's lock (stacks/locks/<stack>.yaml) pins them, and the locked render deploys `@sha256:` only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from components.kit.shell import split_command
from stacks import images
from stacks.charts import CHARTS, chart_images
from stacks.config.mirrors import qualified
from stacks.fetched import wanted
from stacks.load import ConfigError, secret_keys_of, validate
from tests.support.golden import STACKS
from tests.support.helpers import evaluate_config, stack_config
from tools.mirror.lock import to_lock
from tools.mirror.manifest import CHART_TYPES, manifest
from tools.mirror.sources import findings
from tools.render.evaluate import Evaluation
from tools.render.plan import redact, reveal
from tools.render.write import write_all


def _secrets(raw: dict[str, Any]) -> dict[str, str]:
    return {k: f"test-{k}" for k in secret_keys_of(validate(raw))}


def _images(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [v for k, v in doc.items() if k == "image" and isinstance(v, str)] + [i for v in doc.values() for i in _images(v)]
    return [i for v in doc for i in _images(v)] if isinstance(doc, list) else []


def _chart_name(chart: Any) -> str:
    """The chart's name: of an OCI reference, or of a verified local `<chart>-<version>.tgz`."""
    base = str(chart).rsplit("/", 1)[-1]
    return base.removesuffix(".tgz").rsplit("-", 1)[0] if base.endswith(".tgz") else base


def _value(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values.get(part, {})
    return values


def test_the_locked_mirrored_render_deploys_every_image_by_digest() -> None:
    ev = evaluate_config(raw := stack_config("airgap"), _secrets(raw), stack="airgap")
    deployed = [i for r in ev.resources if r.type.startswith("kubernetes:") and r.type not in CHART_TYPES for i in _images(redact(r.inputs))]
    assert deployed and all("@sha256:" in i for i in deployed), [i for i in deployed if "@sha256:" not in i]
    charts = [r for r in ev.resources if r.type in CHART_TYPES]
    assert {_chart_name(r.inputs["chart"]) for r in charts} == {"traefik", "nvidia-device-plugin"}
    for r in charts:
        name = _chart_name(r.inputs["chart"])
        for c in chart_images(name) or []:
            value = str(_value(redact(r.inputs)["values"], c.path))
            digest = re.fullmatch(r"(?:.+@)?(?:sha256:)?([0-9a-f]{64})", value)
            assert digest and value == c.value(f"sha256:{digest.group(1)}"), (name, c.path, value)


def test_a_tag_only_catalog_image_on_a_mirrored_site_is_refused_before_anything_is_registered() -> None:
    raw = stack_config("airgap")
    raw["models"].append({"name": "new-api", "image": "ghcr.io/example/new-api:1.0", "placement": "cloud", "port": 8000})
    seen = Evaluation("airgap")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, _secrets(raw), stack="airgap", into=seen)
    assert err.value.problems == [
        f"models[{len(raw['models']) - 1}].image: ghcr.io/example/new-api:1.0 is a tag on a mirrored site; give it by digest "
        "(`...@sha256:<digest>`) or run `make mirror STACK=airgap RESOLVE=1` on a connected machine (it writes stacks/locks/airgap.yaml)"]
    assert seen.resources == []
    # Given by digest, it renders as given.
    raw["models"][-1]["image"] = "ghcr.io/example/new-api@sha256:" + "a" * 64
    ev = evaluate_config(raw, _secrets(raw), stack="airgap")
    assert ("ghcr.io/example/new-api@sha256:" + "a" * 64) in _images(redact(ev.by_name("new-api-deployment").inputs))


def test_a_chart_image_missing_from_the_lock_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = images.read_lock(images.lock_path("airgap"))
    images.write_lock(tmp_path / "airgap.yaml", "airgap", {r: d for r, d in lock.items() if "traefik" not in r},
                      images.read_files(images.lock_path("airgap")))
    monkeypatch.setattr(images, "LOCKS", tmp_path)
    raw = stack_config("airgap")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, _secrets(raw), stack="airgap")
    assert err.value.problems == ["chart traefik: docker.io/library/traefik:v3.7.11 is a tag on a mirrored site; run "
                                  "`make mirror STACK=airgap RESOLVE=1` on a connected machine (it writes stacks/locks/airgap.yaml)"]


def test_a_snap_file_without_its_sha3_384_in_the_lock_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {n: d for n, d in images.read_files(images.lock_path("airgap")).items() if n != "snaps/snapd_21759.snap"}
    images.write_lock(tmp_path / "airgap.yaml", "airgap", images.read_lock(images.lock_path("airgap")), files)
    monkeypatch.setattr(images, "LOCKS", tmp_path)
    raw = stack_config("airgap")
    seen = Evaluation("airgap")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, _secrets(raw), stack="airgap", into=seen)
    assert err.value.problems == [f"{key}.snaps: snaps/snapd_21759.snap has no sha3-384 in stacks/locks/airgap.yaml (`files:`); run "
                                  "`make mirror STACK=airgap RESOLVE=1` on a connected machine (it hashes the files the snaps source serves)"
                                  for key in ("mirrors", "sites[1].mirrors")]  # the stack-wide mirrors' and the office's own
    assert seen.resources == []


@pytest.mark.parametrize(("text", "why"), [
    ("images:\n  docker.io/library/redis:7: sha256:abc\n", "docker.io/library/redis:7: not a `sha256:<64 hex digits>` digest"),
    ("images:\n  hunter2-password-here: sha256:" + "a" * 64 + "\n", "entry 1 is not a fully qualified `registry/repository:tag`"),
    ("images: {}\nmirrorCredentials: user:hunter2\n", "holds only `images:`"),
    ("files:\n  snaps/microk8s_7394.snap: sha256:" + "a" * 64 + "\n", "snaps/microk8s_7394.snap: not a `sha3-384:<96 hex digits>` digest"),
    ("files:\n  snaps/hunter2: sha3-384:" + "a" * 96 + "\n", "is not a `charts/<chart>-<version>.tgz`, `snaps/<snap>_<revision>.snap`"),
])
def test_a_lock_holds_image_references_and_digests_only(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ValueError, match=None) as err:
        images.read_files(tmp_path / "s.yaml")
    assert why in str(err.value) and "hunter2" not in str(err.value)


def test_what_make_mirror_locks_is_image_references_only() -> None:
    raw = stack_config("airgap")
    raw["models"][0]["secretEnv"] = {"API_TOKEN": "apiToken"}
    refs = to_lock(validate(raw))
    assert refs == sorted(images.read_lock(images.lock_path("airgap")))
    assert all(images.TAG_REF.fullmatch(r) for r in refs)


def test_a_connected_stack_needs_no_lock_and_keeps_its_tags() -> None:
    ev = evaluate_config(raw := stack_config("dev"), _secrets(raw), stack="dev")
    assert "redis:7.4.1-alpine" in _images(redact(ev.by_name("redis-deployment").inputs))


def test_a_microk8s_track_whose_images_are_not_listed_is_refused() -> None:
    raw = stack_config("airgap")
    raw["cluster"]["channel"] = "1.33/stable"
    problems = images.pin_problems(validate(raw), images.read_lock(images.lock_path("airgap")), "airgap")
    assert problems == [problem for problem in problems if problem.startswith("cluster.channel: 1.33/stable: MicroK8s' own images")] != []


@pytest.mark.parametrize("stack", sorted({*STACKS, "airgap"}))
def test_the_charts_checked_are_the_charts_rendered(stack: str) -> None:
    """pin_problems checks the charts charts_used names: exactly those the render installs."""
    raw = stack_config(stack)
    ev = evaluate_config(raw, _secrets(raw), stack=stack)
    rendered = {_chart_name(r.inputs["chart"]) for r in ev.resources if r.type in CHART_TYPES}
    assert set(images.charts_used(validate(raw))) == rendered


def test_the_charts_a_mirrored_example_stack_installs_list_their_images() -> None:
    for name in ("traefik", "nvidia-device-plugin", "cert-manager"):
        listed = chart_images(name)
        assert listed, name
        assert all(image.rsplit(":", 1)[1] in (CHARTS / name / "chart.yaml").read_text() for image, *_ in listed)


def test_a_mirrored_stack_with_monitoring_pulls_every_monitoring_image_by_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Monitoring on the airgap stack, locked as `make mirror RESOLVE=1` would lock it (a digest
    per tag, a sha256 per chart archive): each image of the monitoring charts' pins is set by
    digest in the values its chart reads, listed by digest in the manifest, and preflighted; the
    render names no internet source."""
    raw = stack_config("airgap")
    raw["monitoring"] = {"enabled": True}
    cfg = validate(raw)
    before = images.read_lock(images.lock_path("airgap"))
    with pytest.raises(ConfigError) as err:  # the example's lock has none of them: refused, naming each
        evaluate_config(raw, _secrets(raw), stack="airgap")
    assert any("chart kube-prometheus-stack: quay.io/prometheus/prometheus:v3.14.0-distroless is a tag" in p for p in err.value.problems)
    stand_in = {ref: before.get(ref) or f"sha256:{hashlib.sha256(ref.encode()).hexdigest()}" for ref in to_lock(cfg)}
    files = {name: f"sha256:{hashlib.sha256(name.encode()).hexdigest()}" for name in wanted(cfg, images.charts_used(cfg))}
    files |= {n: d for n, d in images.read_files(images.lock_path("airgap")).items() if n.startswith("snaps/")}  # the snap files' as locked
    images.write_lock(tmp_path / "airgap.yaml", "airgap", stand_in, files)
    monkeypatch.setattr(images, "LOCKS", tmp_path)
    ev = evaluate_config(raw, _secrets(raw), stack="airgap")
    doc = manifest(ev)
    preflighted = set(split_command(reveal(ev.by_name("receipt-bootstrap-mirrors").inputs["create"]))[1]["IMAGES"].split())
    checked = 0
    for r in (r for r in ev.resources if r.type in CHART_TYPES):
        name = _chart_name(r.inputs["chart"])
        for c in chart_images(name) or []:
            digest = stand_in[qualified(c.image)]
            assert _value(redact(r.inputs)["values"], c.path) == c.value(digest), (name, c.path)
            by_digest = f"{qualified(c.image)}@{digest}"
            assert by_digest in doc["images"] and by_digest in preflighted, by_digest
            checked += name in ("kube-prometheus-stack", "dcgm-exporter")
    assert checked == 13  # twelve of kube-prometheus-stack, dcgm-exporter's one
    write_all(ev, tmp_path / "render")  # and the render names no internet source (what `make check` walks)
    assert findings(tmp_path / "render" / "artifacts", cfg) == []
