"""TF models: the models volume, models fetched from a checked HTTPS source before the server
starts, and the fetch script itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import evaluate_config, stack_config
from tests.support.workloads import FETCHED, MODEL_SHA, pod
from tools.render.evaluate import Evaluation


def test_the_models_volume_binds_on_microk8s_hostpath_storage(dev: Evaluation) -> None:
    # MicroK8s has no default StorageClass; `microk8s enable hostpath-storage` creates
    # `microk8s-hostpath` (microk8s-core-addons 1.32, addons/hostpath-storage/storage.yaml).
    claim = dev.by_name("tf-serving-store").inputs["spec"]
    assert claim["storageClassName"] == "microk8s-hostpath"
    # Its binding mode is WaitForFirstConsumer, and pulumi-kubernetes counts such a claim ready
    # while Pending (await/awaiters.go): the Deployment that consumes it can come after it.
    assert dev.by_name("tf-serving-store").urn in dev.closure(dev.by_name("tf-serving-deployment").urn)
    raw = stack_config("dev")
    raw["tfServing"] = {"storageClass": "fast-nvme"}
    assert evaluate_config(raw).by_name("tf-serving-store").inputs["spec"]["storageClassName"] == "fast-nvme"


def test_a_model_with_a_source_is_fetched_into_the_volume_before_the_server_starts(fetching: Evaluation) -> None:
    from components.workloads.tf_serving import FETCH_SCRIPT
    spec = pod(fetching, "tf-serving")
    assert [c["name"] for c in spec["initContainers"]] == ["fetch-ocr-detector", "fetch-ocr-recognizer"]
    init = spec["initContainers"][0]
    assert init["command"] == ["sh", "/fetch/fetch-model.sh"]
    assert {e["name"]: e["value"] for e in init["env"]} == {
        "SOURCE": FETCHED["source"], "SHA256": MODEL_SHA, "TARGET": "/models/ocr-detector/3"}  # <basePath>/<version>
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True and init["securityContext"]["runAsNonRoot"] is True
    server_mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "models")
    assert server_mount["readOnly"] is True  # only the fetcher writes
    volume = next(v for v in spec["volumes"] if v["name"] == "models")
    assert "readOnly" not in volume["persistentVolumeClaim"]
    assert fetching.by_name("tf-serving-fetch").inputs["data"] == {"fetch-model.sh": FETCH_SCRIPT.read_text()}
    egress = fetching.by_name("tf-serving-download").inputs["spec"]["egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.1.0.0/16", "10.152.183.0/24", "169.254.169.254/32"]}}],
                       "ports": [{"protocol": "TCP", "port": 443}]}]


@pytest.mark.parametrize(("tf", "message"), [
    ({"source": FETCHED["source"], "sha256": None}, "`source` needs `sha256`"),
    ({"source": None, "sha256": None}, "give the model `source` and `sha256`"),  # TF-Serving would never open its ports
    ({**FETCHED, "basePath": "/srv/ocr-detector"}, "with `source`, `basePath` must be `/models/<name>`"),
    ({"source": None, "sha256": None, "basePath": "/srv/ocr-detector"}, "give the model `source` and `sha256`"),
    ({"source": "http://models.example.com/m.tar.gz", "sha256": MODEL_SHA}, "source"),
    # TF-Serving 2.18.0 links no S3 file system: the model would never load (docs/upstream.md).
    ({"source": None, "sha256": None, "basePath": "s3://models-bucket/ocr-detector"}, "no S3 file system"),
    # It reads gs:// only with Google credentials, which the program has no way to give it.
    ({"source": None, "sha256": None, "basePath": "gs://models-bucket/ocr-detector"}, "Google credentials"),
])
def test_bad_model_sources_are_rejected_naming_the_key(tf: dict[str, Any], message: str) -> None:
    from stacks.load import ConfigError
    raw = stack_config("dev")
    next(m for m in raw["models"] if m["name"] == "ocr-detector")["tf"].update(tf)
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:models[3].tf") and message in problem, problem
    assert seen.resources == []


def model_archive(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    import hashlib
    import tarfile
    src = tmp_path / "export"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for rel in files:
            tar.add(src / rel, arcname=rel)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def run_fetch(tmp_path: Path, archive: Path, sha: str, target: Path) -> subprocess.CompletedProcess[str]:
    from components.workloads.tf_serving import FETCH_SCRIPT
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    curl = bin_dir / "curl"  # "downloads" the archive: copies it to the -o path, counts calls
    curl.write_text('#!/bin/sh\necho x >> "$CALLS"\nout=\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
                    'cp "$ARCHIVE" "$out"\n')
    curl.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SOURCE": FETCHED["source"], "SHA256": sha, "TARGET": str(target),
           "ARCHIVE": str(archive), "CALLS": str(tmp_path / "calls")}
    return subprocess.run(["sh", str(FETCH_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_fetch_script_unpacks_a_checked_archive_once(tmp_path: Path) -> None:
    archive, sha = model_archive(tmp_path, {"saved_model.pb": "GRAPH", "variables/variables.index": "IDX"})
    target = tmp_path / "models" / "ocr-detector" / "3"
    first = run_fetch(tmp_path, archive, sha, target)
    assert first.returncode == 0, first.stderr
    assert (target / "saved_model.pb").read_text() == "GRAPH" and (target / "variables" / "variables.index").exists()
    again = run_fetch(tmp_path, archive, sha, target)
    assert again.returncode == 0 and "is in place" in again.stdout
    assert (tmp_path / "calls").read_text().count("x") == 1  # nothing downloaded the second time
    assert sorted(p.name for p in target.parent.iterdir()) == ["3"]  # no work directory left behind


def test_fetch_script_refuses_a_changed_or_malformed_archive(tmp_path: Path) -> None:
    archive, sha = model_archive(tmp_path, {"saved_model.pb": "GRAPH"})
    target = tmp_path / "models" / "m" / "1"
    wrong = run_fetch(tmp_path, archive, "f" * 64, target)
    assert wrong.returncode == 1 and f"has SHA-256 {sha}, the config says {'f' * 64}; refusing it" in wrong.stderr
    assert not target.exists()
    flat, flat_sha = model_archive(tmp_path / "x", {"model/saved_model.pb": "GRAPH"})
    nested = run_fetch(tmp_path, flat, flat_sha, target)
    assert nested.returncode == 1 and "no saved_model.pb at its top level" in nested.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_fetch_script_is_posix_sh() -> None:
    from components.workloads.tf_serving import FETCH_SCRIPT
    result = subprocess.run(["shellcheck", "-s", "sh", str(FETCH_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_fetch_script_trusts_the_files_mirrors_ca_when_given(tmp_path: Path) -> None:
    from components.workloads.tf_serving import FETCH_SCRIPT
    archive, sha = model_archive(tmp_path, {"saved_model.pb": "GRAPH"})
    curl = tmp_path / "bin" / "curl"  # records its arguments, then "downloads" the archive
    curl.parent.mkdir()
    curl.write_text('#!/bin/sh\necho "$*" >> "$CALLS"\nout=\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\ncp "$ARCHIVE" "$out"\n')
    curl.chmod(0o755)
    for n, ca in enumerate(("/fetch-ca/ca.crt", "")):
        env = {"PATH": f"{curl.parent}:/usr/bin:/bin", "SOURCE": "https://files.lan/m.tar.gz", "SHA256": sha, "CACERT": ca,
               "TARGET": str(tmp_path / "models" / "m" / str(n)), "ARCHIVE": str(archive), "CALLS": str(tmp_path / f"calls{n}")}
        result = subprocess.run(["sh", str(FETCH_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        args = (tmp_path / f"calls{n}").read_text().split()
        assert ("--cacert" in args) == bool(ca)
        if ca:
            assert args[args.index("--cacert") + 1] == ca
