"""`make mirror`: a manifest for every example stack, read from the plan; what it lists for a
mirrored stack is exactly what each host's preflight checks; `make render` writes it too."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.cluster.nvidia import TOOLKIT_PACKAGES
from components.kit.shell import command_line, compose, split_command
from stacks.load import secret_keys_of, validate
from tests.support.golden import STACKS
from tests.support.helpers import evaluate_config, stack_config
from tools.mirror.__main__ import main
from tools.mirror.manifest import manifest
from tools.render.evaluate import Evaluation
from tools.render.plan import Registration
from tools.render.write import reveal, write_all


@pytest.mark.parametrize("stack", sorted({*STACKS, "airgap"}))
def test_every_example_stack_gets_a_manifest(stack: str, tmp_path: Path) -> None:
    assert main(["--stack", stack, "--out", str(tmp_path / "m.json")]) == 0
    doc = json.loads((tmp_path / "m.json").read_text())
    assert any(i.startswith("docker.io/library/redis:7.4.1-alpine") for i in doc["images"])
    # MicroK8s' own images (1.32) and the charts' own images are listed too.
    assert {"registry.k8s.io/pause:3.10", "docker.io/calico/node:v3.28.1", "docker.io/coredns/coredns:1.10.1"} <= set(doc["images"])
    assert any(i.startswith("docker.io/library/traefik:v3.7.11") for i in doc["images"])
    assert {c["chart"] for c in doc["charts"]} >= {"traefik", "nvidia-device-plugin"}
    assert all(c["version"] and c["repository"] for c in doc["charts"])
    assert all("wireguard-tools" in h["apt"] for h in doc["hosts"].values())


def _airgap() -> tuple[dict[str, Any], Evaluation]:
    raw = stack_config("airgap")
    return raw, evaluate_config(raw, secrets={k: f"test-{k}" for k in secret_keys_of(validate(raw))}, stack="airgap")


def test_the_preflight_checks_what_the_manifest_lists() -> None:
    _, ev = _airgap()
    doc = manifest(ev)
    for host in ("receipt", "ws-1"):
        params = split_command(reveal(ev.by_name(f"{host}-bootstrap-mirrors").inputs["create"]))[1]
        assert sorted(params["IMAGES"].split()) == doc["images"]
        assert [f"{s}.snap" for s in params["SNAPS"].split()] == [s["file"] for s in doc["hosts"][host]["snaps"]]
        assert params["SNAPS"].split()[0].startswith("snapd_")  # carried, so snapd never fetches it from the store
        assert params["SNAP_SHA3_384"].split() == [f"{s['file'].removesuffix('.snap')}={s['sha3-384']}" for s in doc["hosts"][host]["snaps"]]
        assert set(params["APT_PACKAGES"].split()) | set(params["NVIDIA_PACKAGES"].split()) == {
            p for p in doc["hosts"][host]["apt"] if not p.startswith("(")}
    assert doc["files"] == ["https://mirror.example.lan/models/ocr-detector-3.tar.gz", "https://mirror.example.lan/models/ocr-recognizer-7.tar.gz"]
    gpu = split_command(reveal(ev.by_name("ws-1-bootstrap-mirrors").inputs["create"]))[1]  # TF-Serving's node checks the model files
    assert [f"{gpu['FILES_URL']}/{f.split('=')[0]}" for f in gpu["FILES"].split()] == doc["files"]
    # Each with the SHA-256 the fetcher requires, so the preflight checks the bytes, not only the name.
    assert all(re.fullmatch(r"[^=]+=[0-9a-f]{64}", f) for f in gpu["FILES"].split()), gpu["FILES"]


def test_render_writes_the_manifest_into_the_artifacts(tmp_path: Path) -> None:
    _, ev = _airgap()
    write_all(ev, tmp_path)
    assert json.loads((tmp_path / "artifacts" / "mirror-manifest.json").read_text()) == manifest(ev)


def _office(hosts: int) -> Evaluation:
    """A plan of `hosts` hosts, each with its reachability probe and two more commands."""
    ev = Evaluation("office")
    for n in range(hosts):
        conn = {"host": f"198.51.100.{n + 1}", "user": "ubuntu"}
        for step in ("reachable", "bootstrap-base", "wg-key"):
            params = {"PACKAGES": f"wireguard-tools h{n}"} if step == "bootstrap-base" else {}
            create = command_line(step, compose("base-bootstrap.sh", params), sudo=True)
            ev.resources.append(Registration(f"urn:{n}:{step}", "command:remote:Command", f"ws-{n}-{step}", None, True, [],
                                             {"connection": conn, "create": create}))
    return ev


def test_the_manifest_reads_each_commands_connection_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Naming each command's host once per command, not by a scan of every command per command
    (quadratic in a large office's hosts): the connections revealed grow with the commands."""
    import tools.mirror.manifest as module

    revealed: list[Any] = []

    def counted(value: Any) -> Any:
        revealed.append(value)
        return reveal(value)

    monkeypatch.setattr(module, "reveal", counted)
    counts = {}
    for hosts in (10, 40):
        revealed.clear()
        doc = manifest(_office(hosts))
        assert sorted(doc["hosts"]) == sorted(f"ws-{n}" for n in range(hosts))
        assert doc["hosts"]["ws-3"]["apt"] == ["h3", "wireguard-tools"]
        counts[hosts] = len(revealed)
    assert counts[40] <= 4 * counts[10], counts  # linear: 16x if quadratic


# What ubuntu-drivers hands apt-get for `nvidia:<branch>` where the archive has the signed modules
# (ubuntu-drivers-common UbuntuDrivers/detect.py get_desktop_package_list at jammy's and noble's
# versions: the driver and `linux-modules-nvidia-<branch>-<flavour>`; docs/upstream.md), and the targets that are shell
# expressions, as each script fills them (a new expression fails the walk until it is listed).
def _ubuntu_drivers(p: dict[str, str], flavour: str) -> list[str]:
    if p.get("INSTALL_DRIVER") != "true":  # nvidia-setup.sh then never reaches an install of the driver
        return []
    return [f"nvidia-driver-{p['DRIVER_VERSION']}", f"linux-modules-nvidia-{p['DRIVER_VERSION']}-{flavour}"]


EXPRESSIONS: dict[str, Callable[[dict[str, str], str], list[str]]] = {
    "${missing[@]}": lambda p, f: p["PACKAGES"].split(),  # base-bootstrap.sh: those of PACKAGES not installed
    "$1": lambda p, f: _ubuntu_drivers(p, f)[1:],  # nvidia-setup.sh ubuntu_drivers_install: the signed modules
    "$modules": lambda p, f: _ubuntu_drivers(p, f)[1:],
    "nvidia:$DRIVER_VERSION": _ubuntu_drivers,
    "nvidia-driver-$DRIVER_VERSION": lambda p, f: _ubuntu_drivers(p, f)[:1],
    "${TOOLKIT_PACKAGES[@]/%/=$TOOLKIT_VERSION}": lambda p, f: [f"{n}={p['TOOLKIT_VERSION']}" for n in TOOLKIT_PACKAGES],
    "${dkms[@]}": lambda p, f: ["(the recommended driver)"] if _ubuntu_drivers(p, f) and not p["DRIVER_VERSION"] else [],  # only without a branch
}
INSTALL = re.compile(r"(?:apt-get (?:-o \S+ |\"\$\{apt_opts\[@\]\}\" )*|ubuntu[-_]drivers(?:_install)? )(?:install )?([^|;&>]*)")


def _install_targets(script: str, params: dict[str, str], flavour: str) -> set[str]:
    targets: set[str] = set()
    for line in script.splitlines():
        line = line.strip()
        if line.startswith("#") or not re.match(r"(retry )?(apt-get|ubuntu[-_]drivers)", line) or " -s " in line:
            continue
        m = INSTALL.search(line)
        if m is None or not re.search(r"\binstall\b|^(retry )?ubuntu_drivers_install ", line) or "update" in line.split():
            continue
        for word in shlex.split(m.group(1).rstrip("\\ ")):
            if word.startswith("-") or word == "install":
                continue
            if word in EXPRESSIONS:
                targets.update(EXPRESSIONS[word](params, flavour))
            else:
                assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", word), f"an install target the walk cannot read: {word}"
                targets.add(word)
    return targets


def test_every_package_a_hosts_steps_install_is_preflighted() -> None:
    """Each `apt-get install` and `ubuntu-drivers install` target in every step a host of the
    airgap stack runs (the firewall off, so only agent-guard installs nftables on the control
    plane), read in the composed scripts with the step's parameters, is in that host's preflight
    list: APT_PACKAGES and NVIDIA_PACKAGES, chrony where the preflight adds it on the host (the
    same `needs_chrony` as the bootstrap), the driver's modules for the flavour it checks."""
    raw = stack_config("airgap")
    raw["firewall"] = {**raw.get("firewall", {}), "enabled": False}
    ev = evaluate_config(raw, {k: f"test-{k}" for k in secret_keys_of(validate(raw))}, stack="airgap")
    seen: dict[str, set[str]] = {}
    for host in [h["name"] for h in raw["hosts"]]:
        preflight, params = split_command(reveal(ev.by_name(f"{host}-bootstrap-mirrors").inputs["create"]))
        preflighted = set(params["APT_PACKAGES"].split()) | set(params["NVIDIA_PACKAGES"].split())
        if 'needs_chrony; then APT_PACKAGES+=" chrony"' in preflight:
            preflighted.add("chrony")
        installed: set[str] = set()
        for r in ev.resources:
            if r.type.startswith("command:") and r.name != f"{host}-bootstrap-mirrors" and (r.name.startswith(f"{host}-") or f"-{host}-" in r.name):
                script, p = split_command(str(reveal(r.inputs.get("create"))))
                installed |= _install_targets(script, p, params.get("KERNEL_FLAVOUR", ""))
        assert installed - preflighted == set(), host
        seen[host] = installed
    assert {"chrony", "wireguard-tools"} <= seen["vpn-hub"] and {"nftables", "s3cmd"} & seen["receipt"]
    assert {"nvidia-driver-550", "linux-modules-nvidia-550-generic"} <= seen["ws-1"]
    assert not any(p.startswith("nvidia-driver") for p in seen["ws-2"])  # installDriver: false
