"""What the MicroK8s stubs do at install and on `refresh-certs`, as MicroK8s 1.32 does it.

Run by the `snap` and `microk8s` stubs (tests/support/cluster_stubs.py) with the test venv's Python:
- `launch SNAP_DATA SNAP_COMMON`: the install hook takes the first launch configuration it
  finds (ours, else the bundled default), and cluster-agent applies it: args files, the
  csr.conf.template generated from extraSANs (zero-based DNS.n/IP.n), addons enabled once the
  agent runs, then the file renamed to `.applied`.
- `label SNAP_DATA STATE ARGS...`: `kubectl label node NAME KEY=VALUE [--as=USER --as-group=G]
  [--dry-run=server]` answered as kube-apiserver 1.32 does, by the args it runs with: with
  AlwaysAllow (or no mode) anything goes; under RBAC,Node a node identity (system:node:<n> in
  system:nodes) may patch Nodes (the system:node role), and only NodeRestriction
  (plugin/pkg/admission/noderestriction/admission.go admitNode, getForbiddenLabels) refuses it
  another node, or its own `*.node-restriction.kubernetes.io` labels.
- `cert SNAP_DATA`: (re)issue the fake server.crt from csr.conf.template: the certificate is
  a text file holding what `openssl x509 -ext subjectAltName` prints.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

import yaml

# microk8s-resources/microk8s.default.yaml at v1.32.
DEFAULT_LAUNCH: dict[str, Any] = {"version": "0.1.0", "extraKubeletArgs": {"--cluster-domain": "cluster.local", "--cluster-dns": "10.152.183.10"},
                  "addons": [{"name": "dns"}]}
ARGS_FILES = {"extraKubeletArgs": "kubelet", "extraKubeAPIServerArgs": "kube-apiserver"}


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def csr_template(extra_sans: list[str]) -> str:
    """cluster-agent pkg/util/csr.go GenerateCSRConf (the parts that matter)."""
    ips = ["127.0.0.1", "10.152.183.1"] + [s for s in extra_sans if _is_ip(s)]
    dns = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster",
           "kubernetes.default.svc.cluster.local"] + [s for s in extra_sans if not _is_ip(s)]
    return ("[ req ]\nreq_extensions = req_ext\n\n[ req_ext ]\nsubjectAltName = @alt_names\n\n[ alt_names ]\n"
            + "".join(f"DNS.{i} = {d}\n" for i, d in enumerate(dns)) + "\n"
            + "".join(f"IP.{i} = {a}\n" for i, a in enumerate(ips)) + "#MOREIPS\n\n[ v3_ext ]\nsubjectAltName=@alt_names\n")


def launch(snap_data: Path, snap_common: Path) -> None:
    # snap/hooks/install @ v1.32: the first of /etc/microk8s.yaml, $SNAP_USER_COMMON/.microk8s.yaml
    # (root's, the hook runs as root), $SNAP_COMMON/.microk8s.yaml, else the bundled default.
    candidates = [Path(os.environ[v]) for v in ("ETC_LAUNCH_CONFIG", "ROOT_LAUNCH_CONFIG") if v in os.environ]
    found = [p for p in [*candidates, snap_common / ".microk8s.yaml"] if p.is_file()]
    config: dict[str, Any] = yaml.safe_load(found[0].read_text()) if found else DEFAULT_LAUNCH
    for key, name in ARGS_FILES.items():
        args = snap_data / "args" / name
        lines = args.read_text().splitlines()
        for flag, value in (config.get(key) or {}).items():
            lines = [line for line in lines if not line.startswith(f"{flag}=")] + [f"{flag}={value}"]
        args.write_text("".join(line + "\n" for line in lines))
    if config.get("extraSANs") is not None:
        (snap_data / "certs" / "csr.conf.template").write_text(csr_template([str(s) for s in config["extraSANs"]]))
    cert(snap_data)
    enabled = snap_data.parent / "enabled-addons"
    enabled.mkdir(parents=True, exist_ok=True)
    for addon in config.get("addons") or []:
        (enabled / addon["name"]).write_text(" ".join(addon.get("args") or []))
        if addon["name"] == "rbac":  # addons/rbac/enable @ core addons 2d6e317
            args = snap_data / "args" / "kube-apiserver"
            kept = [line for line in args.read_text().splitlines() if not line.startswith("--authorization-mode=")]
            args.write_text("".join(line + "\n" for line in [*kept, "--authorization-mode=RBAC,Node"]))
    launcher = snap_common / "etc" / "launcher"
    launcher.mkdir(parents=True, exist_ok=True)
    (launcher / "install.yaml.applied").write_text(yaml.safe_dump(config))


def alt_names(template: str) -> list[tuple[str, str]]:
    """(kind, value) of each `DNS.n`/`IP.n` line in a csr.conf.template's [ alt_names ]."""
    found, section = [], ""
    for line in template.splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        elif section == "alt_names" and " = " in line:
            kind, value = line.split(" = ", 1)
            found.append((kind.split(".")[0], value.strip()))
    return found


def cert(snap_data: Path) -> None:
    """`refresh_csr_conf; gen_server_cert`: the SANs of csr.conf.template's alt_names."""
    sans = [("DNS:" if kind == "DNS" else "IP Address:") + value for kind, value in alt_names((snap_data / "certs" / "csr.conf.template").read_text())]
    (snap_data / "certs" / "server.crt").write_text("X509v3 Subject Alternative Name: \n    " + ", ".join(sans) + "\n")


def _arg(snap_data: Path, state: Path, name: str) -> str:
    """The running API server's argument: as started ($STATE/kube-apiserver-running: args it started
    with that its args file no longer shows, a restart pending), else its args file's."""
    running = state / "kube-apiserver-running"
    text = (running if running.exists() else snap_data / "args" / "kube-apiserver").read_text()
    lines = [a for a in text.splitlines() if a.startswith(f"--{name}=")]
    return lines[-1].split("=", 1)[1].strip('"') if lines else ""


def label(snap_data: Path, state: Path, args: list[str]) -> int:
    words = [a for a in args if not a.startswith("-")]
    flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    node, changes = words[2], words[3:]
    if not (state / "nodes" / node).exists():
        print(f'Error from server (NotFound): nodes "{node}" not found', file=sys.stderr)
        return 1
    user, restricted = flags.get("as", "admin"), "NodeRestriction" in _arg(snap_data, state, "enable-admission-plugins").split(",")
    if user.startswith("system:node:") and flags.get("as-group") == "system:nodes" and restricted and "RBAC" in _arg(snap_data, state, "authorization-mode"):
        own = user.removeprefix("system:node:")
        if own != node:
            print(f'Error from server (Forbidden): nodes "{node}" is forbidden: node "{own}" is not allowed to modify node "{node}"', file=sys.stderr)
            return 1
        forbidden = [c.split("=")[0].rstrip("-") for c in changes
                     if (ns := c.split("/")[0]) == "node-restriction.kubernetes.io" or ns.endswith(".node-restriction.kubernetes.io")]
        if forbidden:
            print(f'Error from server (Forbidden): nodes "{node}" is forbidden: is not allowed to modify labels: {", ".join(forbidden)}', file=sys.stderr)
            return 1
    print(f"node/{node} labeled" + (" (server dry run)" if flags.get("dry-run") == "server" else ""))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "label":
        sys.exit(label(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]))
    elif sys.argv[1] == "launch":
        launch(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        cert(Path(sys.argv[2]))
