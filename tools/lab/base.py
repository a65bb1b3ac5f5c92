"""What a lab is made of: its sites and hosts, the per-host mounts, the tools it needs on
this machine, and a bounded shell runner. The lab itself (namespaces, routers, sshd) is
`tools/lab/netlab.py`."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

SHIMS = Path(__file__).parent / "shims"
GLOBAL_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.src_valid_mark", "net.bridge.bridge-nf-call-iptables")
MOUNTS = {  # per-host folder -> where it is mounted inside the host's mount namespace
    "etc-wireguard": "/etc/wireguard",
    "run-wireguard": "/run/wireguard",
    "sysctl.d": "/etc/sysctl.d",
    "modules-load.d": "/etc/modules-load.d",
    "sbin": "/usr/local/sbin",
    "labstate": "/run/hybrid-ai-lab",
}
ROOT_BASHRC = Path(pwd.getpwnam("root").pw_dir) / ".bashrc"  # the lab's hosts log in as root
STOCK_BASHRC = Path("/usr/share/base-files/dot.bashrc")
"""root's ~/.bashrc as Debian and Ubuntu install it (base-files): comments only. sshd's
`bash -c` reads ~/.bashrc (bash does when its input is a network connection), so each lab host
gets this one over the machine's root's, which may do anything (pyenv's init: some fifty
processes per SSH command, more than many of the program's scripts)."""
# Made inside each host's private /run, so no lab ever touches the machine's own /run.
PRIVATE_RUN_DIRS = ("/run/sshd", "/run/wireguard", "/run/hybrid-ai-lab")
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "iptables", "wg", "wg-quick", "wireguard-go", "ssh", "ssh-keygen", "/usr/sbin/sshd")


def missing_requirements() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t) and not Path(t).exists()]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install iproute2 iptables wireguard-tools wireguard-go openssh-server)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun for wireguard-go"
    absent_dirs = [t for t in MOUNTS.values() if not t.startswith("/run/") and not Path(t).is_dir()]
    if absent_dirs:
        return f"missing directories the lab mounts over: {', '.join(absent_dirs)} (install wireguard-tools, procps, kmod)"
    # Lab hosts share this machine's packages: the base bootstrap must find them installed,
    # so that it never runs apt here.
    from components.hosts.bootstrap import BASE_PACKAGES

    absent = [p for p in BASE_PACKAGES.split() if sh("dpkg-query", "-W", "-f=${Status}", p, check=False).stdout != "install ok installed"]
    if absent:
        return f"packages the base bootstrap expects are missing: {', '.join(absent)} (apt-get install them)"
    return None


def sh(*cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Startable:
    """What a lab starts: `up` runs `_up`, and on any failure `down` undoes what it made."""

    def up(self) -> Self:
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError


def add_netns(name: str) -> None:
    """A network namespace with its loopback up (every lab host, router and control plane)."""
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def netns_pids(name: str) -> list[int]:
    return [int(p) for p in sh("ip", "netns", "pids", name, check=False).stdout.split()]


def kill_pids(pids: list[int], sig: int) -> None:
    """Signal processes a lab started (by PID; one already gone is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class Site:
    name: str
    lan_cidr: str
    """A slice of 198.51.100.0/24; its first address is the router."""
    wan: str
    """The router's address on the internet segment."""

    @property
    def router_lan(self) -> str:
        return str(ipaddress.IPv4Network(self.lan_cidr).network_address + 1)


@dataclass
class Host:
    name: str
    mgmt: str
    """SSH address on the management network."""
    public: str | None = None
    """Address on the internet segment (cloud hosts)."""
    lan: str | None = None
    """Address on its site's LAN (on-prem hosts)."""
    site: str = "cloud"
    ns: str = ""
    dir: Path = field(default_factory=Path)
    host_key: str = ""
    """Its SSH public host key line."""
    sshd: subprocess.Popen[bytes] | None = None
    overlays: tuple[str, ...] = ()
    """Standard directories (/etc, /root, /var/lib ...) given a private writable layer
    (overlayfs, its upper layer in the host's folder): scripts that add users or write keys
    there change this host only, never the machine."""
    sshd_options: dict[str, str] = field(default_factory=dict)
    """sshd_config keywords replacing the lab's (e.g. `UsePAM yes`, as Ubuntu ships it)."""
    sshd_match: str = ""
    """Match blocks appended to its sshd_config."""


def sshd_config(host: Host, key: Path, authorized_keys: Path) -> str:
    """The lab's sshd_config for a host: the lab's client key logs in as root (also found at
    /run/hybrid-ai-lab/authorized_keys, a path StrictModes accepts); the host may replace
    keywords and add Match blocks."""
    options = {
        "ListenAddress": host.mgmt, "Port": "22", "HostKey": str(key), "AuthorizedKeysFile": str(authorized_keys),
        "PermitRootLogin": "prohibit-password", "PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no",
        "UsePAM": "no", "StrictModes": "no", "PidFile": "none", "PrintMotd": "no",
    } | host.sshd_options
    return "".join(f"{k} {v}\n" for k, v in options.items()) + host.sshd_match
