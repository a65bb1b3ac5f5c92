"""A lab of test hosts on this machine: network namespaces, NAT routers, and one sshd per host.

Layout (documentation ranges only):
- "internet": a bridge in its own namespace, 203.0.113.0/24. Cloud hosts sit on it with
  public addresses; each on-prem site's router has its WAN address there.
- each on-prem site: a router namespace that masquerades its LAN (a slice of
  198.51.100.0/24) to the internet; its workstations have no public address.
- management: an operator namespace with a bridge on 192.0.2.0/24, one leg per host; the
  lab's SSH client runs there (as an operator on the office LAN would). No VPN endpoint
  ever points into it.

Each host gets its own mount and UTS namespaces (its hostname is its name), a private /run
(a tmpfs: sshd's /run/sshd, wireguard-go's sockets) and per-host folders bind-mounted over /etc/wireguard,
/run/wireguard, /etc/sysctl.d, /etc/modules-load.d, /usr/local/sbin (the lab's systemctl
shim) and /run/hybrid-ai-lab, and a stock root ~/.bashrc over this machine's (base.py STOCK_BASHRC),
then its sshd starts there, so the production scripts run
unchanged with production paths and interface names. A host may also overlay standard
directories (`Host.overlays`: a script adding a user writes this host's /etc only).

Several labs may run on one machine at once (two test runs, `make lab-up` and a test): every
name is per lab (namespaces, temporary veths, folders), and the lab never creates or removes
anything outside its own folder; mount targets outside /run are standard directories that
must exist already (wireguard-tools, procps, kmod and the base system ship them).

Everything started is stopped by PID, every namespace deleted, even when a test fails.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tools.lab.base import (
    GLOBAL_SYSCTLS,
    MOUNTS,
    PRIVATE_RUN_DIRS,
    ROOT_BASHRC,
    SHIMS,
    STOCK_BASHRC,
    Host,
    Site,
    Startable,
    add_netns,
    kill_pids,
    netns_pids,
    sh,
    sshd_config,
)


class Lab(Startable):
    def __init__(self, root: Path, sites: list[Site], hosts: list[Host], operator_public: str | None = None):
        self.root = root
        self.operator_public = operator_public
        """The operator's address on the internet segment (to reach public endpoints), if any."""
        self.sites = {s.name: s for s in sites}
        self.hosts = {h.name: h for h in hosts}
        self._tag = secrets.token_hex(3)  # temporary veth names in the root namespace
        # Per lab, not only per process: one test process may run two labs at once.
        self.prefix = f"hai{os.getpid() % 100000}-{self._tag}"
        self.namespaces: list[str] = []
        self.created_dirs: list[Path] = []
        self._veths = 0
        self.client_key = root / "client_key"
        self.global_sysctls_before: dict[str, str] = {}
        self.attached_pids: dict[str, int] = {}
        """Each host's sshd PID, for a lab another process started (`attach`)."""

    # -- building -------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _add_ns(self, name: str) -> str:
        ns = self.ns(name)
        self.namespaces.append(ns)  # first: removed on `down` whatever fails next
        add_netns(ns)
        return ns

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        self._veths += 1
        tmp_a, tmp_b = f"hl{self._tag}{self._veths}a", f"hl{self._tag}{self._veths}b"
        sh("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        for tmp, ns, name in ((tmp_a, ns_a, name_a), (tmp_b, ns_b, name_b)):
            sh("ip", "link", "set", tmp, "netns", ns)
            sh("ip", "-n", ns, "link", "set", tmp, "name", name)
            sh("ip", "-n", ns, "link", "set", name, "up")

    def _bridge(self, ns: str, name: str, address: str | None = None) -> None:
        sh("ip", "-n", ns, "link", "add", name, "type", "bridge")
        sh("ip", "-n", ns, "link", "set", name, "up")
        if address:
            sh("ip", "-n", ns, "addr", "add", address, "dev", name)

    def _up(self) -> None:
        self.global_sysctls_before = self.global_sysctls()
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hybrid-ai-lab", "-f", str(self.client_key))

        inet = self._add_ns("inet")
        self._bridge(inet, "br0")
        op = self._add_ns("op")
        self._bridge(op, "br0", "192.0.2.1/24")
        if self.operator_public:
            self._veth(inet, "op0", op, "wan0")
            sh("ip", "-n", inet, "link", "set", "op0", "master", "br0")
            sh("ip", "-n", op, "addr", "add", f"{self.operator_public}/24", "dev", "wan0")
        for i, site in enumerate(self.sites.values()):
            router = self._add_ns(f"r-{site.name}")
            self._veth(inet, f"r{i}", router, "wan0")
            sh("ip", "-n", inet, "link", "set", f"r{i}", "master", "br0")
            sh("ip", "-n", router, "addr", "add", f"{site.wan}/24", "dev", "wan0")
            self._bridge(router, "lan0", f"{site.router_lan}/{ipaddress.IPv4Network(site.lan_cidr).prefixlen}")
            sh("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            sh("ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE")
        for i, host in enumerate(self.hosts.values()):
            self._add_host(i, host, inet, op)
        self._wait_for_ssh()

    def _add_host(self, i: int, host: Host, inet: str, op: str) -> None:
        host.ns = self._add_ns(host.name)
        self._veth(op, f"m{i}", host.ns, "mgmt0")
        sh("ip", "-n", op, "link", "set", f"m{i}", "master", "br0")
        sh("ip", "-n", host.ns, "addr", "add", f"{host.mgmt}/24", "dev", "mgmt0")
        if host.public:
            self._veth(inet, f"h{i}", host.ns, "eth0")
            sh("ip", "-n", inet, "link", "set", f"h{i}", "master", "br0")
            sh("ip", "-n", host.ns, "addr", "add", f"{host.public}/24", "dev", "eth0")
        else:
            site = self.sites[host.site]
            router = self.ns(f"r-{site.name}")
            self._veth(router, f"h{i}", host.ns, "eth0")
            sh("ip", "-n", router, "link", "set", f"h{i}", "master", "lan0")
            prefix = ipaddress.IPv4Network(site.lan_cidr).prefixlen
            sh("ip", "-n", host.ns, "addr", "add", f"{host.lan}/{prefix}", "dev", "eth0")
            sh("ip", "-n", host.ns, "route", "add", "default", "via", site.router_lan)

        host.dir = self.root / "hosts" / host.name
        for folder in MOUNTS:
            (host.dir / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIMS / "systemctl", host.dir / "sbin" / "systemctl")
        (host.dir / "bashrc").write_text(STOCK_BASHRC.read_text() if STOCK_BASHRC.exists() else "")
        # The machine's clock is synced by the machine: the lab's "systemd" says so.
        (host.dir / "labstate" / "active").mkdir(exist_ok=True)
        (host.dir / "labstate" / "active" / "systemd-timesyncd").touch()
        key = host.dir / "ssh_host_ed25519_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key))
        host.host_key = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        for keys in (host.dir / "authorized_keys", host.dir / "labstate" / "authorized_keys"):
            keys.write_text(self.client_key.with_suffix(".pub").read_text())
        (host.dir / "sshd_config").write_text(sshd_config(host, key, host.dir / "authorized_keys"))
        layers = [(target, host.dir / "overlay" / target.strip("/").replace("/", "-")) for target in host.overlays]
        for _, layer in layers:
            for part in ("upper", "work"):
                (layer / part).mkdir(parents=True, exist_ok=True)
        mounts = "; ".join(
            [f"hostname {host.name}", "mount -t tmpfs -o mode=755 lab-run /run", *(f"mkdir -p {d}" for d in PRIVATE_RUN_DIRS)]
            + [f"mount -t overlay lab-overlay -o lowerdir={t},upperdir={d}/upper,workdir={d}/work {t}" for t, d in layers]
            + [f"mount --bind {host.dir / folder} {target}" for folder, target in MOUNTS.items()]
            + [f"mount --bind {host.dir / 'bashrc'} {ROOT_BASHRC}"] * ROOT_BASHRC.exists()
        )
        log = open(host.dir / "sshd.log", "wb")  # noqa: SIM115 - handed to the child process
        host.sshd = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, "unshare", "-m", "-u", "--propagation", "private", "bash", "-c",
             f"set -e; {mounts}; exec /usr/sbin/sshd -D -e -f {host.dir}/sshd_config"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )

    def _wait_for_ssh(self, timeout: float = 20) -> None:
        for host in self.hosts.values():
            deadline = time.monotonic() + timeout
            while self.ssh(host.name, "true", check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"lab host {host.name}: sshd did not answer within {timeout}s: {(host.dir / 'sshd.log').read_text()}")
                time.sleep(0.2)

    # -- using ----------------------------------------------------------------------------
    def known_hosts(self) -> Path:
        path = self.root / "known_hosts"
        path.write_text("".join(f"{h.mgmt} {h.host_key}\n" for h in self.hosts.values()))
        return path

    def ssh_argv(self, address: str, known_hosts: Path, user: str = "root", port: int = 22) -> list[str]:
        return [
            "ip", "netns", "exec", self.ns("op"), "ssh", "-F", "/dev/null", "-i", str(self.client_key), "-p", str(port),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5", "-o", "ConnectionAttempts=1", "-o", "LogLevel=ERROR", f"{user}@{address}", "--",
        ]

    def ssh(self, host: str, command: str, *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = self.ssh_argv(self.hosts[host].mgmt, self.known_hosts())
        return sh(*argv, command, check=check, timeout=timeout)

    def exec(self, host: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host's network and mount namespaces (no SSH)."""
        sshd = self.hosts[host].sshd
        pid = sshd.pid if sshd is not None else self.attached_pids[host]
        return sh("nsenter", "-t", str(pid), "-m", "-n", *cmd, check=check, timeout=timeout)

    def pids(self, host: str, comm: str) -> list[int]:
        """PIDs of processes named `comm` inside the host's network namespace."""
        found = []
        for pid in sh("ip", "netns", "pids", self.hosts[host].ns, check=False).stdout.split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                    found.append(int(pid))
            except OSError:
                continue
        return found

    def ping_command(self, host: str, address: str) -> list[str]:
        """One ping from `host` to `address`, answered within 1 s or failed."""
        return ["ip", "netns", "exec", self.hosts[host].ns, "ping", "-c", "1", "-W", "1", address]

    def ping(self, host: str, address: str) -> bool:
        return sh(*self.ping_command(host, address), check=False).returncode == 0

    @staticmethod
    def global_sysctls() -> dict[str, str]:
        return {k: sh("sysctl", "-n", k, check=False).stdout.strip() for k in GLOBAL_SYSCTLS}

    # -- tearing down ---------------------------------------------------------------------
    def down(self) -> None:
        for host in self.hosts.values():
            if host.sshd is not None and host.sshd.poll() is None:
                host.sshd.terminate()
                try:
                    host.sshd.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    host.sshd.kill()
                    host.sshd.wait(timeout=5)
        # Whatever still runs in our namespaces was started by the lab or its scripts
        # (wireguard-go daemons): end it by PID, politely first.
        self._signal_namespaces(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self._namespace_pids():
            if time.monotonic() > deadline:
                self._signal_namespaces(signal.SIGKILL)
                break
            time.sleep(0.1)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
        # Only folders this lab made, inside its own root (no shared mount target: another
        # lab's mounts would be detached with it).
        for path in reversed(self.created_dirs):
            if path.is_relative_to(self.root):
                with contextlib.suppress(OSError):
                    path.rmdir()
        self.created_dirs.clear()

    def _namespace_pids(self) -> list[int]:
        return [pid for ns in self.namespaces for pid in netns_pids(ns)]

    def _signal_namespaces(self, sig: signal.Signals) -> None:
        kill_pids(self._namespace_pids(), sig)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
