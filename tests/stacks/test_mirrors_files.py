"""Model files through a site's `files` mirror: the GPU nodes' site's mirror (and its private CA) is
what TF-Serving's fetcher uses and what those nodes' preflight checks; sites with GPU nodes that
disagree are one config error."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from components.kit.shell import split_command
from stacks.load import ConfigError, secret_keys_of, validate
from tests.support.helpers import evaluate_config, stack_config
from tests.support.workloads import pod
from tools.render.evaluate import Evaluation
from tools.render.write import reveal

OFFICE_FILES = "https://files.office.example.lan/models"
CA = "-----BEGIN CERTIFICATE-----\nstand-in CA of the files mirror\n-----END CERTIFICATE-----\n"


def _airgap(office_files: str = OFFICE_FILES, stack_wide: bool = False) -> dict[str, Any]:
    """The airgap example with the office's own files mirror, the stack-wide one gone unless `stack_wide`."""
    raw = stack_config("airgap")
    if not stack_wide:
        raw["mirrors"].pop("files")
        raw["mirrors"].pop("filesCaConfig", None)
        raw["mirrors"].pop("filesAddresses", None)
    office = next(s for s in raw["sites"] if s["name"] == "office")
    office["mirrors"]["files"] = office_files
    return raw


def _evaluate(raw: dict[str, Any]) -> Evaluation:
    keys = secret_keys_of(validate(raw))
    return evaluate_config(raw, {k: CA if k == "filesCa" else f"test-{k}" for k in keys}, stack="airgap")


def _sources(ev: Evaluation) -> list[str]:
    return [e["value"] for c in pod(ev, "tf-serving")["initContainers"] for e in c["env"] if e["name"] == "SOURCE"]


def _mirror_step(ev: Evaluation, host: str) -> tuple[dict[str, str], str]:
    step = ev.by_name(f"{host}-bootstrap-mirrors").inputs
    return split_command(reveal(step["create"]))[1], str(reveal(step.get("stdin") or ""))


def test_gpu_pods_fetch_from_their_sites_own_files_mirror() -> None:
    raw = _airgap()
    office = next(s for s in raw["sites"] if s["name"] == "office")
    office["mirrors"].pop("filesCaConfig", None)
    ev = _evaluate(raw)
    sources = _sources(ev)
    assert sources and all(s.startswith(f"{OFFICE_FILES}/") for s in sources), sources
    params, _ = _mirror_step(ev, "ws-1")  # a GPU node checks each of them on its site's mirror
    assert params["FILES_URL"] == OFFICE_FILES
    shas = [e["value"] for c in pod(ev, "tf-serving")["initContainers"] for e in c["env"] if e["name"] == "SHA256"]
    assert sorted(params["FILES"].split()) == sorted(f"{s.removeprefix(f'{OFFICE_FILES}/')}={sha}" for s, sha in zip(sources, shas, strict=True))
    assert _mirror_step(ev, "receipt")[0]["FILES"] == ""  # no TF-Serving there


def test_the_files_mirrors_ca_is_mounted_into_the_fetcher_and_given_to_the_preflight() -> None:
    raw = _airgap()
    next(s for s in raw["sites"] if s["name"] == "office")["mirrors"]["filesCaConfig"] = "filesCa"
    ev = _evaluate(raw)
    spec = pod(ev, "tf-serving")
    secret = ev.by_name("tf-serving-fetch-ca").inputs
    assert reveal(secret["stringData"]) == {"ca.crt": CA}
    volume = next(v for v in spec["volumes"] if v["name"] == "fetch-ca")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    for init in spec["initContainers"]:
        assert {"name": "CACERT", "value": "/fetch-ca/ca.crt"} in init["env"]
        assert {"name": "fetch-ca", "mountPath": "/fetch-ca", "readOnly": True} in init["volumeMounts"]
    assert "CACERT" not in str(spec["containers"])  # the server itself has no use for it
    params, stdin = _mirror_step(ev, "ws-1")
    assert params["SECRETS_ON_STDIN"] == "true"
    assert f"files-ca files {base64.b64encode(CA.strip().encode()).decode()}\n" in stdin
    assert "filesCa" not in str(ev.by_name("ws-1-bootstrap-mirrors").inputs["create"])  # never on the command line


def test_sites_with_gpu_nodes_and_different_files_mirrors_are_one_error() -> None:
    raw = _airgap(stack_wide=True)  # the cloud's stack-wide files differ from the office's
    cloud = next(h for h in raw["hosts"] if h["name"] == "interface")
    cloud.update(gpu={"model": "rtx-3090", "count": 1}, nvidia={"driverVersion": "550"})
    with pytest.raises(ConfigError) as err:
        _evaluate(raw)
    problems = [p for p in err.value.problems if "mirrors.files" in p]
    assert len(problems) == 1, err.value.problems
    assert "office" in problems[0] and "cloud" in problems[0] and "filesCaConfig" in problems[0]


def test_files_ca_without_files_is_refused() -> None:
    raw = stack_config("airgap")
    raw["mirrors"].pop("files")
    raw["mirrors"].pop("filesAddresses")
    raw["mirrors"]["filesCaConfig"] = "mirrorCa"
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert any("filesCaConfig" in p and "`files` is unset" in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("url", ["http://mirror.example.lan/models", "https://mirror.example.lan:8443/models"])
def test_a_files_mirror_the_fetcher_cannot_reach_is_refused(url: str) -> None:
    raw = _airgap(office_files=url)  # the download NetworkPolicy lets the fetcher out on 443 only
    with pytest.raises(ConfigError) as err:
        validate(raw)
    problems = err.value.problems
    assert len(problems) == 1 and problems[0].startswith("hybrid-ai:sites[1].mirrors: files:") and "port 443" in problems[0], problems


def test_a_files_mirror_on_443_is_accepted() -> None:
    validate(_airgap(office_files="https://mirror.example.lan:443/models"))


def test_the_fetcher_pod_resolves_an_on_prem_files_mirror_as_its_hosts_do() -> None:
    # Cluster DNS runs on the cloud nodes and forwards to the cloud's resolvers: the office's
    # mirror name is given to the pod as a host alias, and the GPU node's preflight checks it.
    raw = _airgap()
    office = next(s for s in raw["sites"] if s["name"] == "office")
    office["mirrors"]["filesAddresses"] = ["198.51.100.5", "198.51.100.6"]
    ev = _evaluate(raw)
    assert pod(ev, "tf-serving")["hostAliases"] == [{"ip": "198.51.100.5", "hostnames": ["files.office.example.lan"]},
                                                   {"ip": "198.51.100.6", "hostnames": ["files.office.example.lan"]}]
    assert _mirror_step(ev, "ws-1")[0]["FILES_ADDRESSES"] == "198.51.100.5 198.51.100.6"


def test_an_on_prem_files_mirror_named_by_host_without_its_address_is_one_error() -> None:
    raw = _airgap()
    office = next(s for s in raw["sites"] if s["name"] == "office")
    office["mirrors"].pop("filesAddresses", None)
    with pytest.raises(ConfigError) as err:
        _evaluate(raw)
    problems = [p for p in err.value.problems if "filesAddresses" in p]
    assert len(problems) == 1 and "sites[1].mirrors.filesAddresses" in problems[0] and "files.office.example.lan" in problems[0], err.value.problems
    office["mirrors"]["files"] = "https://198.51.100.5/models"  # an address needs no alias
    assert "hostAliases" not in pod(_evaluate(raw), "tf-serving")
