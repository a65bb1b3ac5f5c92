"""Keeping a lab between commands (`make lab-up` / `make lab-down`): what a later process needs to
use the lab (`attach`) or to stop it (`down_saved`), recorded in a root-only file (`save`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from tools.lab.base import Host, Site
from tools.lab.netlab import Lab


def save(lab: Lab, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Record what `down` and `attach` need: namespaces, folders, each sshd's PID and config,
    the hosts, and `extra` (the caller's own keys); readable by root only."""
    path.write_text(json.dumps({
        "root": str(lab.root), "namespaces": lab.namespaces, "created_dirs": [str(d) for d in lab.created_dirs],
        "sshd": {h.name: {"pid": h.sshd.pid, "config": str(h.dir / "sshd_config")} for h in lab.hosts.values() if h.sshd},
        "prefix": lab.prefix, "sites": [vars(site) for site in lab.sites.values()],
        "hosts": {h.name: {"mgmt": h.mgmt, "public": h.public, "lan": h.lan, "site": h.site, "ns": h.ns, "dir": str(h.dir),
                           "host_key": h.host_key} for h in lab.hosts.values()},
    } | (extra or {}), indent=2))
    path.chmod(0o600)


def attach(path: Path) -> Lab:
    """The saved lab, to use from another process (`down_saved` stops it)."""
    state = json.loads(path.read_text())
    hosts = [Host(name, h["mgmt"], public=h["public"], lan=h["lan"], site=h["site"], ns=h["ns"], dir=Path(h["dir"]),
                  host_key=h["host_key"]) for name, h in state["hosts"].items()]
    lab = Lab(Path(state["root"]), [Site(**site) for site in state["sites"]], hosts)
    lab.prefix, lab.namespaces = state["prefix"], list(state["namespaces"])
    lab.attached_pids = {name: entry["pid"] for name, entry in state["sshd"].items()}
    return lab


def down_saved(path: Path) -> None:
    """Stop a saved lab: each sshd by its PID (if that PID is still our sshd), then
    whatever runs in its namespaces, then the namespaces and folders."""
    state = json.loads(path.read_text())
    for entry in state["sshd"].values():
        try:
            cmdline = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "sshd" in cmdline and entry["config"] in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(entry["pid"], signal.SIGTERM)
    lab = Lab(Path(state["root"]), [], [])
    lab.namespaces = list(state["namespaces"])
    lab.created_dirs = [Path(d) for d in state["created_dirs"]]
    lab.down()
    shutil.rmtree(state["root"], ignore_errors=True)
    path.unlink()
