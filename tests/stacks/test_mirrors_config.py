"""Mirror settings: each bad one fails with one line naming its key and the fix, before anything
is registered; a site's mirrors replace the stack-wide ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.kit.shell import split_command
from stacks.images import lock_path, read_files
from stacks.load import ConfigError, secret_keys_of, validate
from stacks.mirrors import snap_files
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation
from tools.render.write import reveal

Raw = dict[str, Any]


def _set(path: list[Any], value: Any) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        node = raw
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return mutate


def _netmaker(raw: Raw) -> None:
    """The netmaker example's VPN (and its hub's declared size) on the mirrored stack."""
    netmaker = stack_config("netmaker")
    raw["vpn"] = netmaker["vpn"]
    raw["hosts"][0]["size"] = next(h["size"] for h in netmaker["hosts"] if "size" in h)


BAD = [
    ("apt-url", _set(["mirrors", "apt", "url"], "ftp://mirror.lan/ubuntu"), "hybrid-ai:mirrors.apt.url", "http(s)://host"),
    ("apt-key", _set(["mirrors", "apt", "signedBy"], "see https://mirror.lan/key"), "hybrid-ai:mirrors.apt.signedBy", "ASCII-armored"),
    ("both-snap-sources", _set(["mirrors", "snapStoreProxy"], {"url": "http://proxy.lan", "storeId": "abcdefgh12"}),
     "hybrid-ai:mirrors", "not both"),
    ("duplicate-registry", lambda raw: raw["mirrors"]["registries"].append(dict(raw["mirrors"]["registries"][0])),
     "hybrid-ai:mirrors", "docker.io listed more than once"),
    ("files-http", _set(["mirrors", "files"], "http://mirror.lan/models"), "hybrid-ai:mirrors", "https://"),
    ("revision", _set(["mirrors", "snaps", "microk8sRevision"], 0), "hybrid-ai:mirrors.snaps.microk8sRevision", "greater than or equal to 1"),
    ("no-snapd-revision", lambda raw: raw["mirrors"]["snaps"].pop("snapdRevision"), "hybrid-ai:mirrors.snaps.snapdRevision", "required"),
    ("roll-on-snap-files", _set(["cluster", "upgrade"], {"fromChannel": "1.31/stable"}), "hybrid-ai:cluster.upgrade.fromChannel",
     "install MicroK8s from snap files"),
    ("registry-over-http", lambda raw: raw["mirrors"]["registries"][0].update(url="http://mirror.example.lan:5000/docker.io"),
     "hybrid-ai:mirrors.registries[0].url", "https://"),
    ("bundle-over-http", _set(["sources", "gatewayApiCrds"], "http://mirror.example.lan/gateway-api/v1.5.1/standard-install.yaml"),
     "hybrid-ai:sources.gatewayApiCrds", "https://"),
    ("charts-over-http", _set(["sources", "charts"], "http://mirror.example.lan/charts"), "hybrid-ai:sources.charts", "https://"),
    ("netmaker-on-a-mirrored-stack", lambda raw: _netmaker(raw), "hybrid-ai:vpn.backend", "no mirror path"),
    ("ca-key-is-a-section", lambda raw: raw["mirrors"]["registries"][0].update(caConfig="hosts"),
     "hybrid-ai:mirrors.registries[0].caConfig", "is a config section"),
    # The NVIDIA driver on a mirrored site: its branch is named, so its packages can be carried.
    ("driver-branch-unknown", lambda raw: raw["hosts"][3].pop("nvidia"), "hybrid-ai:hosts[3].nvidia.driverVersion", "set the branch to carry"),
    ("kernel-flavour", _set(["hosts", 3, "nvidia", "kernelFlavour"], "Generic HWE"), "hybrid-ai:hosts[3].nvidia.kernelFlavour", "not a kernel flavour"),
    # A workstation site's registry credential is never one cloud nodes pull with.
    ("credential-shared-through-the-stack-wide-mirrors", lambda raw: raw["sites"][1].pop("mirrors"), "hybrid-ai:sites[1].mirrors:",
     "give the site its own `mirrors` with a pull-only credential"),
    ("credential-shared-by-the-sites-own-mirrors",
     lambda raw: [r.update(credentialsConfig="mirrorCredentials") for r in raw["sites"][1]["mirrors"]["registries"]],
     "hybrid-ai:sites[1].mirrors.registries[0].credentialsConfig", "which cloud nodes use too"),
]


@pytest.mark.parametrize(("case", "mutate", "key", "fix"), BAD, ids=[b[0] for b in BAD])
def test_bad_mirror_config_is_one_line_before_anything_is_registered(case: str, mutate: Callable[[Raw], None], key: str, fix: str) -> None:
    raw = stack_config("airgap")
    mutate(raw)
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, secrets={"sshPrivateKey": "k", "mirrorCa": "ca", "mirrorCredentials": "u:p", "officeMirrorCredentials": "o:p"}, stack="airgap", into=seen)
    problems = err.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(key), problems[0]
    assert fix in problems[0], problems[0]
    assert "\n" not in problems[0] and "PLACEHOLDER" not in problems[0]
    assert seen.resources == []


def test_a_site_replaces_the_stack_wide_mirrors() -> None:
    raw = stack_config("airgap")
    next(s for s in raw["sites"] if s["name"] == "cloud")["mirrors"] = {}
    cfg = validate(raw)
    cloud, office = (next(h for h in cfg.hosts if h.name == n) for n in ("receipt", "ws-1"))
    assert cfg.mirrors_of(cloud).empty and not cfg.mirrors_of(office).empty


def test_registry_secrets_are_secret_config_keys() -> None:
    cfg = validate(stack_config("airgap"))
    assert secret_keys_of(cfg) == {"sshPrivateKey": "hosts[0].ssh.privateKeyConfig", "mirrorCa": "mirrors.registries[0].caConfig",
                                   "mirrorCredentials": "mirrors.registries[0].credentialsConfig",
                                   "officeMirrorCredentials": "sites[1].mirrors.registries[0].credentialsConfig"}


def test_workstation_and_cloud_sites_may_share_servers_and_a_ca_but_not_a_credential() -> None:
    """The example: both sites on one registry with one CA, each site its own credential; an
    office pulling with no credential at all passes too."""
    raw = stack_config("airgap")
    office = next(s for s in validate(raw).sites if s.name == "office")
    assert office.mirrors is not None and {(r.ca_config, r.credentials_config) for r in office.mirrors.registries} == {
        ("mirrorCa", "officeMirrorCredentials")}
    for r in raw["sites"][1]["mirrors"]["registries"]:
        del r["credentialsConfig"]
    validate(raw)


def test_microk8s_base_snap_defaults_to_core20_and_is_acked_and_installed_first() -> None:
    raw = stack_config("airgap")
    del raw["mirrors"]["snaps"]["base"]
    cfg = validate(raw)
    assert cfg.mirrors.snaps is not None and cfg.mirrors.snaps.base == "core20"  # MicroK8s 1.32's snapcraft.yaml
    assert snap_files(cfg.mirrors) == "snapd_21759 core20_2379 microk8s_7394"


def _mirror_params(ev: Evaluation, host: str) -> dict[str, str]:
    return split_command(reveal(ev.by_name(f"{host}-bootstrap-mirrors").inputs["create"]))[1]


def test_snapd_comes_first_and_each_snap_file_carries_its_pinned_sha3_384() -> None:
    raw = stack_config("airgap")
    cfg = validate(raw)
    assert snap_files(cfg.mirrors) == "snapd_21759 core20_2379 microk8s_7394"  # snapd, then the base: neither from the store
    ev = evaluate_config(raw, {k: f"test-{k}" for k in secret_keys_of(cfg)}, stack="airgap")
    files = read_files(lock_path("airgap"))
    params = _mirror_params(ev, "ws-1")
    assert params["SNAP_SHA3_384"].split() == [f"{s}={files[f'snaps/{s}.snap'].removeprefix('sha3-384:')}" for s in params["SNAPS"].split()]
    assert _mirror_params(ev, "vpn-hub")["SNAP_SHA3_384"] == ""  # outside the cluster: no snap from the files ...
    assert _mirror_params(ev, "vpn-hub")["SNAP_HOLD"] == "true"  # ... but its own snaps held by the mirror step
    assert params["SNAP_HOLD"] == "false"  # a node's by its MicroK8s install step


def test_the_snap_store_proxy_is_set_only_on_hosts_in_the_cluster() -> None:
    raw = stack_config("airgap")
    raw["mirrors"]["snapStoreProxy"] = {"url": "https://snap-proxy.example.lan", "storeId": "abcdefgh12"}
    del raw["mirrors"]["snaps"]
    cfg = validate(raw)
    ev = evaluate_config(raw, {k: f"test-{k}" for k in secret_keys_of(cfg)}, stack="airgap")
    assert _mirror_params(ev, "receipt")["SNAP_PROXY_URL"] == "https://snap-proxy.example.lan"
    assert _mirror_params(ev, "receipt")["SNAP_STORE_ID"] == "abcdefgh12"
    hub = _mirror_params(ev, "vpn-hub")
    assert not next(h for h in cfg.hosts if h.name == "vpn-hub").in_cluster
    assert hub["SNAP_PROXY_URL"] == "" and hub["SNAP_STORE_ID"] == ""
