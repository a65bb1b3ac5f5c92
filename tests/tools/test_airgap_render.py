"""A stack with mirrors renders with no host script or manifest naming an internet source; the
check finds each one a connected stack names, so it can fail."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stacks.images import lock_path, read_files
from stacks.load import secret_keys_of, validate
from tests.support.helpers import evaluate_config, stack_config
from tools.mirror.sources import findings
from tools.render.write import artifacts, plan


def _render(raw: dict[str, Any], out: Path, stack: str = "airgap") -> Path:
    # Named as its stack file, so the render pins the images from stacks/locks/<stack>.yaml.
    ev = evaluate_config(raw, secrets={key: f"test-{key}" for key in secret_keys_of(validate(raw))}, stack=stack)
    artifacts(ev, out / "artifacts")
    (out / "plan.json").write_text(json.dumps(plan(ev)))
    return out / "artifacts"


def test_the_airgap_stack_names_no_internet_source(tmp_path: Path) -> None:
    raw = stack_config("airgap")
    out = _render(raw, tmp_path)
    assert list(out.glob("hosts/*/*-bootstrap-mirrors.create.sh")), "no host has a mirror step"
    assert findings(out, validate(raw)) == []
    # Without the snapd snap installed, snapd fetches it from the store before MicroK8s' file
    # (installPrereqs): every node installs snapd and the base from the files first.
    installs = list(out.glob("hosts/*/*-microk8s.create.sh"))
    assert installs and all(re.search(r"^SNAP_FILES='?snapd_[0-9]+ core20_[0-9]+ microk8s_[0-9]+'?$", p.read_text(), re.M) for p in installs)


def test_a_connected_render_is_caught(tmp_path: Path) -> None:
    raw = stack_config("dev")
    found = findings(_render(raw, tmp_path, "dev"), validate(raw))
    assert any("gpu-setup" in f and "nvidia.github.io" in f for f in found), found
    assert any("charts.jetstack.io" in f for f in found), found
    assert any("image redis:7.4.1-alpine from docker.io" in f for f in found), found


def test_a_site_on_the_internet_in_a_mirrored_stack_is_caught(tmp_path: Path) -> None:
    raw = stack_config("airgap")
    next(s for s in raw["sites"] if s["name"] == "office")["mirrors"] = {}
    found = findings(_render(raw, tmp_path), validate(raw))
    assert any(f.startswith("hosts/ws-1/ws-1-bootstrap-gpu-setup") and "nvidia.github.io" in f for f in found), found
    # Images may land on the office's GPU nodes, which have no registry mirror.
    assert any("image ghcr.io/example/ocr-engine:2.1.0" in f for f in found), found


def test_a_registry_without_a_mirror_is_caught(tmp_path: Path) -> None:
    raw = stack_config("airgap")
    raw["mirrors"]["registries"] = [r for r in raw["mirrors"]["registries"] if r["upstream"] != "docker.io"]
    found = findings(_render(raw, tmp_path), validate(raw))
    assert any(f.startswith("kubernetes/redis-deployment.yaml: image docker.io/library/redis:7.4.1-alpine@sha256:")
               and f.endswith("from docker.io, which has no mirror") for f in found), found


def test_the_plan_names_no_internet_source_either(tmp_path: Path) -> None:
    """What the operator's machine fetches (charts, the Gateway API bundle) comes from the mirror
    too (`sources`), and the program hands Pulumi only the copies it verified against the lock:
    no internet URL is left in the plan, and no chart or bundle is fetched by the provider."""
    out = _render(stack_config("airgap"), tmp_path)
    urls = set(re.findall(r"(?:https?|oci)://[A-Za-z0-9.:/_-]+", (out.parent / "plan.json").read_text()))
    assert {u for u in urls if not re.match(r"(https?|oci)://(mirror\.example\.lan|api\.example\.com)\b", u)} == set()
    files = read_files(lock_path("airgap"))
    plan = (out.parent / "plan.json").read_text()
    for name in ("charts/traefik-41.3.0.tgz", "gateway-api/v1.5.1/standard-install.yaml"):
        assert f"build/verified/{files[name].removeprefix('sha256:')}/{name.rsplit('/', 1)[-1]}" in plan, name
    assert not {u for u in urls if "/charts" in u or "standard-install" in u}
