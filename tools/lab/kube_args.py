"""The kube-apiserver flags of the lab's control plane: MicroK8s 1.32's as our install leaves them.

Three layers, in the order a node gets them:
1. MicroK8s 1.32's own `microk8s-resources/default-args/kube-apiserver` (branch 1.32), the flags
   that decide what the API server admits, recorded here (docs/upstream.md): authorization
   AlwaysAllow, `--enable-admission-plugins=EventRateLimit` with its admission configuration
   (a Server limit of 5000 qps, burst 20000), privileged containers allowed, the service-account
   issuer, events kept 5 minutes, WatchList off. Paths become the lab's; the datastore is etcd
   (MicroK8s runs k8s-dqlite behind the same etcd API).
2. The addons the program enables on the seed (`CONTROL_PLANE_ADDONS`): `rbac` sets
   `--authorization-mode=RBAC,Node` (MicroK8s' enable.rbac.sh).
3. What the program and its install script set: the launch configuration's
   `extraKubeAPIServerArgs` (components/cluster/microk8s.py) and every
   `ensure_arg "$ARGS/kube-apiserver" --flag value` line of microk8s-install.sh, read from the
   script itself so that the lab cannot drift from it.
Left out: the aggregation layer's front-proxy flags (no aggregated API in the lab) and the TLS
cipher list (no client here needs it)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from components.cluster.microk8s import CONTROL_PLANE_ADDONS

INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "components" / "cluster" / "scripts" / "microk8s-install.sh"

MICROK8S_DEFAULTS = {
    "--service-cluster-ip-range": "10.152.183.0/24",
    "--authorization-mode": "AlwaysAllow",
    "--secure-port": "16443",
    "--allow-privileged": "true",
    "--service-account-issuer": "https://kubernetes.default.svc",
    "--event-ttl": "5m",
    "--profiling": "false",
    "--enable-admission-plugins": "EventRateLimit",
    "--kubelet-preferred-address-types": "InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP",
    "--feature-gates": "WatchList=false",
}
# microk8s-resources/default-args/admission-control-config-file.yaml and eventconfig.yaml (1.32).
ADMISSION_CONFIG = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: EventRateLimit
    path: eventconfig.yaml
"""
EVENT_CONFIG = """apiVersion: eventratelimit.admission.k8s.io/v1alpha1
kind: Configuration
limits:
  - type: Server
    qps: 5000
    burst: 20000
"""
ADDON_ARGS = {"rbac": {"--authorization-mode": "RBAC,Node"}}


def script_args(script: str, params: Mapping[str, str]) -> dict[str, str]:
    """`ensure_arg "$ARGS/kube-apiserver" FLAG VALUE` lines of a script, values expanded from `params`."""
    found: dict[str, str] = {}
    for line in script.splitlines():
        words = line.strip().split("&&")[0].strip()
        if not words.startswith("ensure_arg "):
            continue
        argv = shlex.split(words)
        if len(argv) != 4 or not argv[1].endswith("/kube-apiserver"):
            continue
        value = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: params[m.group(1)], argv[3])
        found[argv[2]] = value
    return found


def apiserver_args(params: Mapping[str, str], launch: Mapping[str, str]) -> dict[str, str]:
    """The flags (without paths, ports of the lab's own or the datastore) for a control plane
    installed with the install script's `params` and the launch configuration's API server args."""
    args = dict(MICROK8S_DEFAULTS)
    for addon in CONTROL_PLANE_ADDONS:
        args |= ADDON_ARGS.get(addon, {})
    args |= dict(launch)
    args["--service-cluster-ip-range"] = params["SERVICE_CIDR"]
    args |= script_args(INSTALL_SCRIPT.read_text(), params)
    return args


def admission_plugins(args: Mapping[str, str]) -> set[str]:
    return set(args["--enable-admission-plugins"].split(","))
