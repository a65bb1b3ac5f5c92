"""netclient-join.sh and netclient-leave.sh under a netclient stub: join once, leave, a failed
registration fails the step, and the token is on no command line but netclient's own."""

from __future__ import annotations

from pathlib import Path

from tests.support.netmaker import GOOD_TOKEN, token_of
from tests.support.stubs import StubHost

# netclient v0.90.0: `list` prints JSON (functions/list.go); `join -t` exits 0 even when the
# registration fails (cmd/join.go logs "registration failed" and returns).
NETCLIENT = """
case $1 in
  list) printf '[\\n {\\n  "network": "%s",\\n  "connected": true\\n }\\n]\\n' $(cat "$STATE/netclient-networks" 2>/dev/null) | grep -v '""' || echo '[]';;
  join) [ -e "$STATE/join-sleep" ] && sleep "$(cat "$STATE/join-sleep")"
        [ -e "$STATE/registration-fails" ] && { echo "registration failed"; exit 0; }
        echo hybrid-ai > "$STATE/netclient-networks"; echo "    inet 100.64.1.1/16 scope global netmaker" > "$STATE/netmaker-addr";;
  leave) rm -f "$STATE/netclient-networks";;
esac"""


def test_netclient_joins_once_and_leaves(tmp_path: Path) -> None:
    stubs = {
        "netclient.pkg": NETCLIENT,  # what apt installs as netclient
        "apt-get": 'case "$*" in *install*) cp "$(dirname "$0")/netclient.pkg" "$(dirname "$0")/netclient";; esac',
        "ip": 'cat "$STATE/netmaker-addr" 2>/dev/null', "gpg": "exit 0",
        "curl": 'for a in "$@"; do [ "${prev:-}" = -o ] && echo key > "$a"; prev=$a; done',
    }
    h = StubHost(tmp_path, stubs=stubs)
    params = {"HOST_NAME": "ws-1", "NETWORK": "hybrid-ai", "NETCLIENT_VERSION": "v0.90.0",
              "KEYRING": str(tmp_path / "k.gpg"), "SOURCES": str(tmp_path / "nm.list")}
    first = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **params)
    assert first.returncode == 0, first.stderr
    assert "apt-get -o DPkg::Lock::Timeout=120 install -y -q netclient=0.90.0*" in h.calls()
    assert "curl -fsSL -o" in "\n".join(h.calls())  # the repository key, through the stub
    assert f"netclient join -t {GOOD_TOKEN}" in h.calls()
    assert GOOD_TOKEN not in first.stdout + first.stderr
    again = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **params)
    assert again.stdout.strip() == "changed=none" and not [c for c in h.calls() if c.startswith(("apt-get", "netclient join"))]
    assert h.run("netclient-leave.sh", NETWORK="hybrid-ai").returncode == 0
    assert "netclient leave -n hybrid-ai" in h.calls()


def join_params(tmp_path: Path) -> dict[str, str]:
    return {"HOST_NAME": "ws-1", "NETWORK": "hybrid-ai", "NETCLIENT_VERSION": "v0.90.0",
            "KEYRING": str(tmp_path / "k.gpg"), "SOURCES": str(tmp_path / "nm.list")}


def netclient_host(tmp_path: Path) -> StubHost:
    h = StubHost(tmp_path, stubs={"netclient": NETCLIENT, "ip": 'cat "$STATE/netmaker-addr" 2>/dev/null'})
    return h


def test_a_failed_registration_fails_the_join_although_netclient_exits_0(tmp_path: Path) -> None:
    h = netclient_host(tmp_path)
    (h.state / "registration-fails").touch()
    result = h.run("netclient-join.sh", stdin=GOOD_TOKEN + "\n", **join_params(tmp_path))
    assert result.returncode == 1 and "netclient could not join hybrid-ai" in result.stderr
    assert len([c for c in h.calls() if c.startswith("netclient join")]) == 3  # bounded retries
    assert GOOD_TOKEN not in result.stderr


def test_a_token_that_is_not_base64_never_reaches_a_command_line(tmp_path: Path) -> None:
    h = netclient_host(tmp_path)
    result = h.run("netclient-join.sh", stdin="-t x --server evil.example.com\n", **join_params(tmp_path))
    assert result.returncode == 1 and "not base64" in result.stderr
    assert not [c for c in h.calls() if c.startswith("netclient join")]


def test_the_token_is_in_ps_only_as_netclients_own_argument_while_it_runs(tmp_path: Path) -> None:
    # netclient v0.90.0 takes the token only as `join -t` (cmd/join.go: no env, file or stdin):
    # it is visible for that one call, and in no other process (bash, sudo, retries, logs).
    import secrets
    import subprocess

    from components.kit.shell import compose
    from tests.support.helpers import command_lines_while
    # `ps` sees other tests' processes too (xdist runs them side by side): a token of our own.
    token = token_of(f"TOKEN-{secrets.token_hex(8)}")
    h = netclient_host(tmp_path)
    h.bin.joinpath("netclient").write_text(h.bin.joinpath("netclient").read_text().replace(
        'sleep "$(cat "$STATE/join-sleep")"', '/bin/sleep "$(cat "$STATE/join-sleep")"'))
    (h.state / "join-sleep").write_text("1")
    env = {"PATH": f"{h.bin}:/usr/bin:/bin", "STATE": str(h.state), "HOME": str(tmp_path)}
    proc = subprocess.Popen(["bash", "-c", compose("netclient-join.sh", join_params(tmp_path)), "netclient-join.sh"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(token + "\n")
    proc.stdin.close()
    seen = {line for line in command_lines_while(proc) if token in line}
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert seen, "the sampler never saw netclient run"
    assert all(line.endswith(f"/netclient join -t {token}") for line in seen), seen
