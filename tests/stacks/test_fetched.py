"""On a mirrored stack the charts and the Gateway API bundle are fetched by the program, checked
against the sha256 the stack's lock pins (`files:`), and only the verified copies reach Helm and
the provider; a mismatch refuses the run naming the artifact, before anything is registered."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks import fetched, images
from stacks.load import ConfigError, secret_keys_of, validate
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation

BUNDLE = "gateway-api/v1.5.1/standard-install.yaml"
CHART = "charts/traefik-41.3.0.tgz"


def _secrets(raw: dict[str, Any]) -> dict[str, str]:
    return {k: f"test-{k}" for k in secret_keys_of(validate(raw))}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Helm repository and the bundle on a loopback http.server (files we write: stand-ins)."""
    root = tmp_path / "www"
    (root / "gateway-api" / "v1.5.1").mkdir(parents=True)
    (root / BUNDLE).write_bytes(b"# stand-in bundle\n")
    (root / "traefik-41.3.0.tgz").write_bytes(b"stand-in chart archive")
    (root / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": {"traefik": [{"version": "41.3.0", "urls": ["traefik-41.3.0.tgz"]}]}}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_fetched_chart_or_bundle_that_differs_from_the_lock_is_refused_naming_it(
        served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = served
    monkeypatch.setattr(fetched, "VERIFIED", tmp_path / "verified")
    wants = {CHART: url, BUNDLE: f"{url}/{BUNDLE}"}
    good = {CHART: _sha((root / "traefik-41.3.0.tgz").read_bytes()), BUNDLE: _sha((root / BUNDLE).read_bytes())}
    paths, problems = fetched.verified(wants, good)
    assert problems == []
    assert Path(paths[CHART]).read_bytes() == b"stand-in chart archive" and Path(paths[BUNDLE]).read_bytes() == b"# stand-in bundle\n"
    # The mirror now serves other bytes under the same names: refused, naming each artifact, nothing handed on.
    monkeypatch.setattr(fetched, "VERIFIED", tmp_path / "verified-2")
    (root / "traefik-41.3.0.tgz").write_bytes(b"a chart with a privileged DaemonSet")
    (root / BUNDLE).write_bytes(b"kind: ClusterRoleBinding\n")
    paths, problems = fetched.verified(wants, good)
    assert paths == {}
    assert [p.split(":", 1)[0] for p in problems] == [CHART, BUNDLE]
    assert all(f"not the {good[n]} the stack's lock pins" in p for n, p in zip((CHART, BUNDLE), problems, strict=True))
    # A lock without the file's sha256: refused too.
    assert fetched.verified({CHART: url}, {})[1] == [f"{CHART}: no sha256 for it in the stack's lock (`files:`); "
                                                       "run `make mirror RESOLVE=1` on a connected machine"]


def test_a_mirrored_stacks_bundle_file_that_differs_from_the_lock_refuses_the_render(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = images.read_lock(images.lock_path("airgap"))
    files = images.read_files(images.lock_path("airgap"))
    bundle = tmp_path / "standard-install.yaml"
    bundle.write_text("# the site's copy\n")
    raw = stack_config("airgap")
    raw["sources"]["gatewayApiCrds"] = str(bundle)
    monkeypatch.setattr(images, "LOCKS", tmp_path / "locks")
    monkeypatch.setattr(fetched, "VERIFIED", tmp_path / "verified")
    images.write_lock(images.lock_path("airgap"), "airgap", lock, {**files, BUNDLE: _sha(b"# the site's copy\n")})
    ev = evaluate_config(raw, _secrets(raw), stack="airgap")
    crds = next(r for r in ev.of_type("kubernetes:yaml/v2:ConfigFile"))
    assert Path(crds.inputs["file"]).read_text() == "# the site's copy\n" and "verified" in crds.inputs["file"]
    bundle.write_text("# the site's copy, then someone else's\n")
    monkeypatch.setattr(fetched, "VERIFIED", tmp_path / "verified-2")
    seen = Evaluation("airgap")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, _secrets(raw), stack="airgap", into=seen)
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(f"stacks/locks/airgap.yaml: {BUNDLE}: what {bundle} serves")
    assert seen.resources == []
