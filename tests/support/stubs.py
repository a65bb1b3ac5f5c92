"""Run a host script under bash with a PATH of recording stubs that keep state in files.

Each stub appends its command line to `calls.log`, so a test can assert which commands
ran, in which order, and that a second run made no state-changing call.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from components.kit.shell import compose

# Shared prologue of every stub: record the call; $STATE holds the fake host's state.
PROLOGUE = """#!/usr/bin/env bash
set -u
printf '%s\\n' "$(basename "$0") $*" >> "$STATE/calls.log"
"""

DEFAULT_STUBS: dict[str, str] = {
    # Packages: installed ones are files in $STATE/installed/ (the last argument may be a glob).
    "dpkg-query": """
case $* in *'${Version}'*) cat "$STATE/installed/${!#}" 2>/dev/null; exit;; esac  # pkg=VERSION installs keep it
found=0
for f in "$STATE"/installed/${!#}; do
  [ -e "$f" ] && { echo "$(basename "$f") install ok installed"; found=1; }
done
[ "$found" = 1 ]""",
    "apt-get": """
if [ -s "$STATE/apt-fail" ]; then
  n=$(cat "$STATE/apt-fail"); [ "$n" = always ] || echo $((n - 1)) > "$STATE/apt-fail"
  [ "$n" = 1 ] && : > "$STATE/apt-fail"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2; exit 100
fi
seen=0 prev=""
for a in "$@"; do
  if [ "$seen" = 1 ] && [ "${a#-}" = "$a" ] && [ "$prev" != -o ]; then
    # Ubuntu's NVIDIA branches: each branch's components provide and conflict with the same
    # virtual packages, so installing nvidia-driver-N removes the other branch, and with it its
    # signed modules, linux-modules-nvidia-M-<flavour> (assumed: they need that branch's
    # nvidia-kernel-common; linux-restricted-modules' relations were not read); an end-of-life
    # branch's nvidia-driver-N is transitional, depending on a newer branch ($STATE/transitional/<pkg>).
    case $a in nvidia-driver-[0-9]*)
      rm -f "$STATE"/installed/nvidia-driver-[0-9]* "$STATE"/installed/linux-modules-nvidia-[0-9]*
      if [ -s "$STATE/transitional/$a" ]; then touch "$STATE/installed/$(cat "$STATE/transitional/$a")"; fi;;
    esac
    case $a in *=*) printf '%s' "${a#*=}" > "$STATE/installed/${a%%=*}";; *) touch "$STATE/installed/$a";; esac
  fi
  [ "$a" = install ] && seen=1
  prev=$a
done
exit 0""",
    # sysctl values live in $STATE/sysctl/<key>; unknown keys read as 0.
    "sysctl": """
if [ "$1" = -n ]; then cat "$STATE/sysctl/$2" 2>/dev/null || echo 0; exit 0; fi
for a in "$@"; do case $a in *=*) echo "${a#*=}" > "$STATE/sysctl/${a%%=*}";; esac; done""",
    "modprobe": "exit 0",
    # Units: active ones are files in $STATE/active/.
    "systemctl": """
case $1 in
  is-active) [ -e "$STATE/active/${!#}" ];;
  list-unit-files) exit 0;;
  enable|start|restart) for u in "${@:2}"; do [ "$u" = --now ] || touch "$STATE/active/$u"; done;;
  *) exit 0;;
esac""",
    "sleep": "exit 0",
    # Nothing under test may reach the network: a test that needs curl or wget stubs them.
    "curl": 'echo "stub: curl is not stubbed in this test" >&2; exit 99',
    "wget": 'echo "stub: wget is not stubbed in this test" >&2; exit 99',
    # The machine's own cloud-init would wait for this machine's boot: a test that means it stubs it.
    "cloud-init": 'echo "stub: cloud-init is not stubbed in this test" >&2; exit 99',
}

# Command -> the words that make a call of it change the host (None: every call does).
STATE_CHANGING: dict[str, set[str] | None] = {
    "apt-get": {"install", "update", "remove", "purge"},
    "sysctl": {"-w"},
    "systemctl": {"enable", "disable", "start", "stop", "restart", "reload"},
    "modprobe": None,
    "systemd-run": None,
    "snap": {"install", "refresh", "restart", "remove", "ack", "set"},
    "microk8s": {"join", "leave", "add-node", "remove-node", "delete", "apply", "rollout", "drain", "label", "taint", "enable", "refresh-certs",
                 "cordon", "uncordon", "annotate"},
    "nvidia-ctk": {"configure"},
    "ubuntu-drivers": {"install"},
    "gpg": None,
    "flock": None,
}


def changes_state(call: str) -> bool:
    command, *words = call.split()
    if "--dry-run=server" in words:  # admitted or not, nothing is persisted
        return False
    verbs = STATE_CHANGING.get(command, set())
    return verbs is None or bool(verbs & set(words))


@dataclass
class StubHost:
    root: Path
    stubs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment the stubs see (the script itself gets parameters, not env)."""

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.state = self.root / "state"
        for d in (self.bin, self.state / "installed", self.state / "sysctl", self.state / "active"):
            d.mkdir(parents=True, exist_ok=True)
        for name, body in {**DEFAULT_STUBS, **self.stubs}.items():
            path = self.bin / name
            path.write_text(PROLOGUE + body + "\n")
            path.chmod(0o755)

    def run(self, script: str, stdin: str = "", **params: str) -> subprocess.CompletedProcess[str]:
        """Run the script exactly as composed for a host (parameters, lib.sh, body)."""
        (self.state / "calls.log").write_text("")
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "STATE": str(self.state), "HOME": str(self.root), **self.env}
        text = compose(script, params)
        return subprocess.run(["bash", "-c", text, script], env=env, input=stdin, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return (self.state / "calls.log").read_text().splitlines()

    def state_changes(self) -> list[str]:
        return [c for c in self.calls() if changes_state(c)]
