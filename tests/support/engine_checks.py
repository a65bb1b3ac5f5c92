"""What tests/stacks/test_engine_lab.py reads on the engine lab: each host's own state (what `up`
changes and `destroy` must put back) and where the program's Deployments run against where the
config places them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from tests.support.cluster_lab import ClusterLab
from tools.lab.base import Host, sh
from tools.lab.netlab import Lab

# The lab's own: sshd logs every login under /var/log; an overlay's work folder is the kernel's;
# the MicroK8s stand-in keeps what it refused (a diagnostic).
LAB_OWN = re.compile(r"\.log$|/overlay/var/upper/log(/|$)|/overlay/[^/]+/work(/|$)|/labstate/standin-errors$")
# What `destroy` leaves on purpose: /var/snap is snapd's (a real host has it before and after;
# the lab's snap stand-in makes it on the first `snap install`).
KEPT_FOLDERS = re.compile(r"/overlay/var/upper/snap$")
# What `destroy` leaves on purpose (base-teardown.sh): the live forwarding sysctls stay until the
# next boot. The kernel's own consequences of `ip_forward=1` go with it: every interface's
# `forwarding` and `conf.all.accept_redirects` (net/ipv4/devinet.c, `inet_forward_change`).
KEPT_SYSCTLS = re.compile(r"net\.ipv4\.(ip_forward|conf\.[^.]+\.forwarding|conf\.all\.(accept_redirects|src_valid_mark)) = ")


def copied_up(host: Host, path: Path, info: os.stat_result) -> bool:
    """A folder of an overlay's upper layer that only mirrors the same folder below it (overlayfs
    copies a folder up to write in it, and keeps it once emptied): the host sees no change."""
    for target in host.overlays:
        upper = host.dir / "overlay" / target.strip("/").replace("/", "-") / "upper"
        if path.is_relative_to(upper):
            try:
                below = (Path(target) / path.relative_to(upper)).lstat()
            except FileNotFoundError:
                return False
            return stat.S_ISDIR(below.st_mode) and (below.st_mode, below.st_uid, below.st_gid) == (info.st_mode, info.st_uid, info.st_gid)
    return False


def host_state(lab: Lab) -> dict[str, str]:
    """Every file (by digest), folder (mode and owner) and overlayfs whiteout (a character device
    in an upper folder) of every host's own folders (mounts, /etc layer, lab state), and each
    host's network devices, nftables tables and IPv4 sysctls (but `KEPT_SYSCTLS`): what `up`
    changes and `destroy` must put back."""
    found: dict[str, str] = {}
    for h in lab.hosts.values():
        for path in sorted(h.dir.rglob("*")):
            if LAB_OWN.search(str(path)) or KEPT_FOLDERS.search(str(path)):
                continue
            info, key = path.lstat(), str(path.relative_to(lab.root))
            if stat.S_ISREG(info.st_mode):
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            # (a `labstate` folder is the lab stand-ins' bookkeeping: only its files count)
            elif stat.S_ISDIR(info.st_mode) and not copied_up(h, path, info) and "labstate" not in path.relative_to(h.dir).parts:
                found[key] = f"folder {stat.filemode(info.st_mode)} uid={info.st_uid} gid={info.st_gid}"
            elif stat.S_ISCHR(info.st_mode):
                found[key] = f"whiteout {os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
        found[f"{h.name}:links"] = " ".join(sorted(re.findall(r"^\d+: ([^:@]+)", sh("ip", "-n", h.ns, "link").stdout, re.M)))
        found[f"{h.name}:nft"] = sh("ip", "netns", "exec", h.ns, "nft", "list", "tables").stdout
        found[f"{h.name}:sysctl"] = "\n".join(line for line in sh("ip", "netns", "exec", h.ns, "sysctl", "net.ipv4", check=False).stdout.splitlines()
                                              if not KEPT_SYSCTLS.match(line))
    return found


def deployments_where(cluster: ClusterLab) -> dict[str, set[str] | None]:
    """Each Deployment of ours (the program labels every one `part-of=hybrid-ai`) with the nodes
    its pods run on, or None while it is not ready."""
    deployments = json.loads(cluster.kubectl("get", "deployments", "-A", "-l", "app.kubernetes.io/part-of=hybrid-ai", "-o", "json").stdout)["items"]
    pods = json.loads(cluster.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    found: dict[str, set[str] | None] = {}
    for d in deployments:
        selector = d["spec"]["selector"].get("matchLabels", {})
        ready = d.get("status", {}).get("readyReplicas") == d["spec"]["replicas"]
        found[d["metadata"]["name"]] = {p["spec"].get("nodeName", "") for p in pods if p["metadata"]["namespace"] == d["metadata"]["namespace"]
                                        and selector.items() <= p["metadata"].get("labels", {}).items()} if ready else None
    return found


def placements(config: dict[str, Any]) -> dict[str, set[str]]:
    """Where the config places each Deployment of the program (stacks/workloads.py): a model at
    its `placement` (cloud unless said), redis (when a model talks to it) in the cloud, TF-Serving
    (when the catalog holds a tf-model) on the GPU nodes; as the cluster nodes that may hold it."""
    hosts = [h for h in config["hosts"] if {"control-plane", "worker"} & set(h["roles"])]
    nodes = {"cloud": {h["name"] for h in hosts if h["site"] == "cloud"}, "gpu": {h["name"] for h in hosts if h.get("gpu")}}
    models = config["models"]
    where = {m["name"]: nodes[m.get("placement", "cloud")] for m in models if m.get("kind") != "tf-model"}
    if any("redis" in m.get("talksTo", ()) for m in models):
        where["redis"] = nodes["cloud"]
    if any(m.get("kind") == "tf-model" for m in models):
        where["tf-serving"] = nodes["gpu"]
    return where


def misplaced(found: dict[str, set[str] | None], where: dict[str, set[str]]) -> list[str]:
    """What differs between the Deployments found (`deployments_where`) and the placements: one
    missing, unexpected, not ready, or with a pod on a node outside its placement."""
    problems = [f"{name}: not found" for name in sorted(where.keys() - found.keys())]
    problems += [f"{name}: not one the config places" for name in sorted(found.keys() - where.keys())]
    for name, nodes in sorted(found.items()):
        if nodes is None:
            problems.append(f"{name}: not ready")
        elif name in where and not (nodes and nodes <= where[name]):
            problems.append(f"{name}: on {sorted(nodes)}, placed on {sorted(where[name])}")
    return problems
