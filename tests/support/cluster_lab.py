"""The engine lab with what the cluster layer needs (tests/support/engine_lab.py says what):
the lab's real control plane in the control-plane host's network namespace, the cluster-agent,
MicroK8s and NVIDIA stand-ins on the hosts, and the chart mirror in the operator's namespace.
Everything started here is stopped by its PID on exit."""

from __future__ import annotations

import contextlib
import os
import shlex
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.chart_mirror import build as build_mirror
from tests.support.engine_lab import CONTROL_PLANE, OFFICE, OPERATOR_PUBLIC, lab_config, lab_hosts, place_standins, vpn_address
from tests.support.helpers import PROJECT
from tests.support.kube import apiserver_flags
from tools.lab.base import Startable
from tools.lab.kube import CRDS, LAB_FLAGS, ControlPlane
from tools.lab.netlab import Lab

MIRROR_PORT = 8780
"""The chart mirror's port on the operator namespace's loopback (where the provider runs)."""
SNAP_DATA = "/var/snap/microk8s/current"


def args_file(text: str) -> dict[str, str]:
    """A MicroK8s args file's flags (`--flag=value` lines, quotes dropped and ${SNAP_DATA} expanded
    as kubelite's shell wrapper does)."""
    words = (shlex.split(line)[0] for line in text.splitlines() if line.strip().startswith("--"))
    return {flag: value.replace("${SNAP_DATA}", SNAP_DATA).replace("$SNAP_DATA", SNAP_DATA)
            for flag, _, value in (w.partition("=") for w in words)}


def apiserver_drift(written: dict[str, str], argv: list[str]) -> list[str]:
    """Each flag where a kube-apiserver command line (`argv`) differs from the args file the
    control plane's install left (`written`), the lab's own (tools/lab/kube.py LAB_FLAGS) aside."""
    start = next(i for i, a in enumerate(argv) if a.endswith("/kube-apiserver")) + 1
    running = {flag: value for flag, _, value in (a.partition("=") for a in argv[start:] if a)}
    drift = []
    for flag in sorted((written.keys() | running.keys()) - set(LAB_FLAGS)):
        w, r = written.get(flag), running.get(flag)
        same = (set(w.split(",")) == set(r.split(","))) if flag == "--enable-admission-plugins" and w and r else w == r
        if not same:
            drift.append(f"{flag}: the host's args file has {w!r}, the API server runs {r!r}")
    return drift


class ClusterLab(Startable):
    """The engine lab, its control plane on `receipt` and the chart mirror (a context manager)."""

    def __init__(self, root: Path, workstations: int = 2) -> None:
        self.root = root
        (root / "lab").mkdir(parents=True, exist_ok=True)
        self.lab = Lab(root / "lab", [OFFICE], lab_hosts(workstations), operator_public=OPERATOR_PUBLIC)
        self.plane: ControlPlane | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The dev stack's config on the lab, its charts from the lab's mirror. The lab has no
        Gateway data plane (the ingress controller's pods are kwok's), so the post-deploy
        probe through the Gateway could never answer: the public models are probed by TCP, which
        leaves the verification without a probe URL (the probe is tested in tests/cluster)."""
        base = f"http://127.0.0.1:{MIRROR_PORT}"
        raw = lab_config(self.lab, sources={"charts": base, "gatewayApiCrds": f"{base}/gateway-api-standard-install.yaml"})
        raw["models"] = [m | {"health": "tcp"} if m.get("publicPath") else m for m in raw["models"]]
        return raw | overrides

    def __enter__(self) -> ClusterLab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _up(self) -> None:
        self.lab.up()
        host = self.lab.hosts[CONTROL_PLANE]
        assert host.public is not None
        address = vpn_address(CONTROL_PLANE)
        self.plane = ControlPlane([], apiserver_flags(lab_config(self.lab)), root=self.root / "control-plane",
                                  host_ns=host.ns, extra_sans=(host.public, address))
        self.plane.root.mkdir(parents=True, exist_ok=True)
        self.plane.up()
        place_standins(self.lab, self.plane.root / "pki")
        assert host.sshd is not None
        self._start("cluster-agent", ["nsenter", "-t", str(host.sshd.pid), "-m", "-n", sys.executable, "-m", "tests.support.microk8s_agent",
                                      str(self.plane.root / "pki")])
        mirror = self.root / "mirror"
        mirror.mkdir(exist_ok=True)
        build_mirror(mirror, CRDS, f"http://127.0.0.1:{MIRROR_PORT}")
        self._start("mirror", ["ip", "netns", "exec", self.lab.ns("op"), sys.executable, "-m", "http.server", str(MIRROR_PORT),
                               "--bind", "127.0.0.1", "--directory", str(mirror)])
        time.sleep(0.5)
        for name, proc in zip(("cluster-agent", "mirror"), self.processes, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"lab {name} exited: {(self.root / f'{name}.log').read_text(errors='replace')[-2000:]}")

    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=PROJECT, env=env))

    def control_plane_file(self, path: str) -> Path:
        """A file of the control-plane host's private /var layer, from outside the host."""
        return self.lab.hosts[CONTROL_PLANE].dir / "overlay" / "var" / "upper" / Path(path).relative_to("/var")

    def apiserver_drift(self) -> list[str]:
        """How the running API server's flags differ from the host's args/kube-apiserver."""
        assert self.plane is not None
        argv = Path(f"/proc/{self.plane.processes['kube-apiserver'].pid}/cmdline").read_bytes().decode().split("\0")
        return apiserver_drift(args_file(self.control_plane_file(f"{SNAP_DATA}/args/kube-apiserver").read_text()), argv)

    def serves_host_certificate(self, timeout: float = 90) -> bool:
        """Whether the API server serves the host's certs/server.crt (it reloads a changed one
        within a minute), waiting at most `timeout` seconds."""
        assert self.plane is not None
        want = ssl.PEM_cert_to_DER_cert(self.control_plane_file(f"{SNAP_DATA}/certs/server.crt").read_text())
        deadline = time.monotonic() + timeout
        while ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", self.plane.port), timeout=5)) != want:
            if time.monotonic() > deadline:
                return False
            time.sleep(2)
        return True

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.plane is not None
        return self.plane.kubectl(*args, check=check)

    def down(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
        if self.plane is not None:
            self.plane.down()
        self.lab.down()
