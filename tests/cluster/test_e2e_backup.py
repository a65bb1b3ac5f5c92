"""End-to-end on real sshd (root, network namespaces): the datastore backup as the plan composes
it. The store (vpn-hub) runs sshd as Ubuntu ships it where it matters (PAM and StrictModes on,
keys in ~/.ssh); the control plane (receipt) has the lab's microk8s (dbctl as at 1.32). Each runs
its plan step, then the real runner sends a snapshot over SSH to the forced command; the key is
refused from any other address, a client-chosen name changes nothing stored, retention prunes,
the interval holds, and datastore-restore.sh puts the snapshot back. Users, keys and files land
in per-host overlays: the machine is left as it was."""

from __future__ import annotations

import base64
import copy
import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cluster.backup import STORE_DIR, STORE_USER
from components.kit.shell import compose
from tests.support.helpers import evaluate_config, unavailable
from tools.lab.base import SHIMS, missing_requirements, sh
from tools.lab.netlab import Lab
from tools.lab.reference import HOSTS, SITES, VPN, lab_config
from tools.render.write import reveal

pytestmark = pytest.mark.e2e

STORE, CP, OTHER = "vpn-hub", "receipt", "interface"
KEY = "/root/.ssh/hybrid-ai-backup"
RUNNER = "/usr/local/lib/hybrid-ai/datastore-backup"
PROM = "/var/lib/node_exporter/textfile/datastore-backup.prom"
OVERLAYS = ("/etc", "/root", "/var/lib", "/var/log", "/usr/local/lib")
# What the lab must never leave on the machine itself.
MACHINE_PATHS = ("/etc/hybrid-ai", "/usr/local/lib/hybrid-ai", "/var/lib/hybrid-ai", "/root/.ssh/hybrid-ai-backup",
                 "/etc/systemd/system/hybrid-ai-datastore-backup.timer", "/var/lib/node_exporter")
PLACEHOLDER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    # ws-1: the plan's models need a GPU host; it takes no part here.
    hosts = {h.name: copy.deepcopy(h) for h in HOSTS if h.name in (STORE, CP, OTHER, "ws-1")}
    for name in (STORE, CP):
        hosts[name].overlays = OVERLAYS
    hosts[STORE].sshd_options = {"UsePAM": "yes", "StrictModes": "yes", "AuthorizedKeysFile": ".ssh/authorized_keys", "ListenAddress": "0.0.0.0"}
    hosts[STORE].sshd_match = "Match User root\n  AuthorizedKeysFile /run/hybrid-ai-lab/authorized_keys\n"
    (tmp_path / "lab").mkdir()
    with Lab(tmp_path / "lab", copy.deepcopy(SITES[:1]), list(hosts.values())) as running:
        for name in hosts:  # the overlay addresses, on the management segment (no VPN needed here)
            running.exec(name, "ip", "addr", "add", f"{VPN[name]}/16", "dev", "mgmt0")
        yield running


def on(lab: Lab, host: str, command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return sh(*lab.ssh_argv(lab.hosts[host].mgmt, lab.known_hosts()), command, check=False, timeout=120, input=stdin)


def ok(lab: Lab, host: str, command: str, stdin: str = "") -> str:
    result = on(lab, host, command, stdin)
    assert result.returncode == 0, (host, command[:200], result.stderr)
    return result.stdout


def plan(lab: Lab, printed: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schedule and store steps' inputs as the program composes them for this lab."""
    raw = lab_config(lab)
    raw["backup"] = {"enabled": True, "host": STORE, "keep": 3}
    ev = evaluate_config(raw, command_stdout={"datastore-backup-schedule": printed})
    return reveal(ev.by_name("datastore-backup-schedule").inputs), reveal(ev.by_name("datastore-backup-store").inputs)


def stored(lab: Lab) -> dict[str, bytes]:
    out = ok(lab, STORE, f"cd {STORE_DIR} && for f in backup-*.tar.gz; do [ -e \"$f\" ] && echo \"$f $(base64 -w0 \"$f\")\"; done; true")
    return {name: base64.b64decode(data) for name, data in (line.split() for line in out.splitlines())}


def archive(name: str, files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def backup_ssh(address: str, name: str) -> str:
    """The backup key's client as the runner calls it, with the store pinned at `address`."""
    return (f"ssh -i {KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/store-hosts "
            f"-o ConnectTimeout=5 {STORE_USER}@{address} {name}")


def test_backup_over_real_ssh_is_confined_prunes_and_restores(lab: Lab) -> None:
    machine = {p: Path(p).exists() for p in MACHINE_PATHS}
    cp_dir = lab.hosts[CP].dir
    (cp_dir / "sbin" / "microk8s").write_bytes((SHIMS / "microk8s").read_bytes())
    (cp_dir / "sbin" / "microk8s").chmod(0o755)
    ok(lab, CP, "mkdir -p /run/hybrid-ai-lab/datastore/registry/configmaps/default /run/hybrid-ai-lab/datastore/registry/namespaces"
                " && echo before > /run/hybrid-ai-lab/datastore/registry/configmaps/default/settings"
                " && echo ns > /run/hybrid-ai-lab/datastore/registry/namespaces/default")

    # The plan's two steps, in its order: the control plane prints its key; the store authorises it.
    schedule, _ = plan(lab, f"changed=none\n{PLACEHOLDER}\n")
    printed = ok(lab, CP, schedule["create"], schedule.get("stdin") or "")
    again = on(lab, CP, schedule["create"], schedule.get("stdin") or "")
    assert again.stdout == printed and "changed=none" in again.stderr
    schedule, store = plan(lab, printed)
    assert ok(lab, STORE, store["create"]).startswith("changed=user ")
    assert ok(lab, STORE, store["create"]).strip() == "changed=none"
    assert ok(lab, STORE, f"passwd --status {STORE_USER}").split()[1] == "L"  # locked, yet its key logs in (PAM on)

    # Three snapshots stored days ago (keep: 3).
    for day in (1, 2, 3):
        name = f"backup-2026010{day}T023000Z"
        ok(lab, STORE, f"base64 -d | install -m 600 -o {STORE_USER} /dev/stdin {STORE_DIR}/{name}.tar.gz", archive(name, {"0.key": b"/old"}))
    before = stored(lab)
    host_key = lab.hosts[STORE].host_key
    ok(lab, CP, f"printf '%s\\n' '{VPN[STORE]} {host_key}' '{lab.hosts[STORE].mgmt} {host_key}' > /root/store-hosts")

    _a_hostile_client_changes_nothing_stored(lab, before)
    _the_key_is_refused_from_any_other_address(lab)

    # The real runner, as the timer runs it: stored under the store's name, the oldest pruned.
    out = on(lab, CP, RUNNER)
    assert out.returncode == 0, out.stderr
    now = stored(lab)
    assert sorted(now) == [*sorted(before)[1:], max(now)] and max(now) > max(before)
    sent = ok(lab, CP, "base64 -w0 /var/lib/hybrid-ai/datastore-backup/backup-*.tar.gz")
    assert now[max(now)] == base64.b64decode(sent)
    metric = ok(lab, CP, f"cat {PROM}")
    # Again at once: the store refuses (one per 10 minutes), nothing changes, no success recorded.
    refused = on(lab, CP, RUNNER)
    assert refused.returncode == 1 and "copying" in refused.stderr
    assert stored(lab) == now and ok(lab, CP, f"cat {PROM}") == metric

    _a_snapshot_the_control_plane_did_not_take_is_refused(lab, min(now), now[min(now)])
    _restore_puts_the_snapshot_back(lab, max(now), now[max(now)])
    _destroy_takes_the_access_away(lab, schedule, store, now)
    assert {p: Path(p).exists() for p in MACHINE_PATHS} == machine
    assert STORE_USER not in Path("/etc/passwd").read_text()


def _a_hostile_client_changes_nothing_stored(lab: Lab, before: dict[str, bytes]) -> None:
    """The control plane's key, used by hand: no shell, no forwarding, and a name of its choosing
    (an existing snapshot's, a path) names nothing. The one it sends is stored under the store's
    name (pruning the oldest), then removed, as the operator would remove a bad snapshot."""
    shell = on(lab, CP, backup_ssh(VPN[STORE], "'cat /etc/shadow'"), "")
    assert shell.returncode == 1 and "not a gzip tar" in shell.stderr and "root:" not in shell.stdout
    forward = on(lab, CP, backup_ssh(VPN[STORE], "").replace(" -o ConnectTimeout", " -W 127.0.0.1:22 -o ConnectTimeout"))
    assert forward.returncode == 255 and "prohibited" in forward.stderr
    assert "refused local port forward" in (lab.hosts[STORE].dir / "sshd.log").read_text()
    oldest = min(before)
    passwd = ok(lab, STORE, "sha256sum /etc/passwd")
    crafted = archive("backup-crafted", {"0.key": b"/registry/evil"})
    result = on(lab, CP, f"base64 -d | {backup_ssh(VPN[STORE], repr(oldest + ' ../../../../etc/passwd'))}", crafted)
    assert result.returncode == 0, result.stderr
    name = result.stdout.split()[-1]
    after = stored(lab)
    assert name not in before and after[name] == base64.b64decode(crafted)
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != oldest}  # oldest pruned, rest intact
    assert ok(lab, STORE, "sha256sum /etc/passwd") == passwd
    # The operator removes the bad one and puts the pruned one back.
    ok(lab, STORE, f"rm {STORE_DIR}/{name} && base64 -d > /root/oldest && install -m 600 -o {STORE_USER} /root/oldest {STORE_DIR}/{oldest}",
       base64.b64encode(before[oldest]).decode())
    assert stored(lab) == before


def _the_key_is_refused_from_any_other_address(lab: Lab) -> None:
    """from=: the same key from the control plane's management address, and from another host."""
    before = stored(lab)
    archive_b64 = archive("backup-x", {"0.key": b"/x"})
    wrong_source = on(lab, CP, f"base64 -d | {backup_ssh(lab.hosts[STORE].mgmt, 'x')}", archive_b64)
    assert wrong_source.returncode == 255 and "Permission denied" in wrong_source.stderr
    key = ok(lab, CP, f"cat {KEY}")
    ok(lab, OTHER, f"mkdir -p /root/.ssh && umask 077 && cat > {KEY}.stolen", key)
    ok(lab, OTHER, f"printf '%s\\n' '{VPN[STORE]} {lab.hosts[STORE].host_key}' > /root/store-hosts.stolen")
    stolen = backup_ssh(VPN[STORE], "x").replace(KEY, f"{KEY}.stolen").replace("/root/store-hosts", "/root/store-hosts.stolen")
    other_host = on(lab, OTHER, f"base64 -d | {stolen}", archive_b64)
    ok(lab, OTHER, f"rm -f {KEY}.stolen /root/store-hosts.stolen")
    assert other_host.returncode == 255 and "Permission denied" in other_host.stderr
    assert stored(lab) == before
    log = (lab.hosts[STORE].dir / "sshd.log").read_text()  # refused by from=, not by anything else
    for source in (lab.hosts[CP].mgmt, VPN[OTHER]):
        assert f"correct key but not from a permitted host (host={source}, ip={source}, required={VPN[CP]})" in log


def _a_snapshot_the_control_plane_did_not_take_is_refused(lab: Lab, name: str, data: bytes) -> None:
    """One the store holds but the runner never sent (put there by hand above): its digest is in
    no record on the control plane, so restore refuses it and the datastore is untouched."""
    ok(lab, CP, f"base64 -d > /root/{name}", base64.b64encode(data).decode())
    before = ok(lab, CP, "find /run/hybrid-ai-lab/datastore -type f | sort | xargs cat")
    refused = on(lab, CP, "bash", compose("datastore-restore.sh", {"BACKUP_FILE": f"/root/{name}"}))
    assert refused.returncode == 1 and "not one the control plane recorded" in refused.stderr, refused.stderr
    assert ok(lab, CP, "find /run/hybrid-ai-lab/datastore -type f | sort | xargs cat") == before


def _restore_puts_the_snapshot_back(lab: Lab, name: str, data: bytes) -> None:
    """datastore-restore.sh, as docs/operations.md runs it, on the snapshot copied back from the store:
    keys changed since return to their snapshot values; keys made since stay (dbctl deletes none)."""
    db = "/run/hybrid-ai-lab/datastore/registry"
    ok(lab, CP, f"echo after > {db}/configmaps/default/settings && mkdir -p {db}/later && echo new > {db}/later/x")
    ok(lab, CP, f"base64 -d > /root/{name}", base64.b64encode(data).decode())  # /root: this host's overlay
    restored = on(lab, CP, "bash", compose("datastore-restore.sh", {"BACKUP_FILE": f"/root/{name}"}))
    assert restored.returncode == 0 and restored.stdout.startswith("restored backup-"), restored.stderr
    assert ok(lab, CP, f"cat {db}/configmaps/default/settings {db}/namespaces/default {db}/later/x") == "before\nns\nnew\n"


def _destroy_takes_the_access_away(lab: Lab, schedule: dict[str, Any], store: dict[str, Any], kept: dict[str, bytes]) -> None:
    ok(lab, STORE, store["delete"])
    refused = on(lab, CP, RUNNER)
    assert refused.returncode == 1
    assert on(lab, STORE, f"id -u {STORE_USER}").returncode == 1
    assert ok(lab, STORE, f"stat -c %U {STORE_DIR}/{max(kept)}").strip() == "root" and stored(lab) == kept
    ok(lab, CP, schedule["delete"])
    assert on(lab, CP, f"ls {KEY} {RUNNER}").returncode == 2
