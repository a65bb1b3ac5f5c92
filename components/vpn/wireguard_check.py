"""What a host prints, checked before it reaches any other host's WireGuard config.

A host's key step prints its public key; that key is pasted into its peers' wg0.conf, which
wg-quick runs as root (`PostUp` and friends are shell). A workstation is the least trusted
machine of the fleet: its output is accepted only as exactly one canonical public key, and
every config line the program writes must match the grammar below. `wg-apply.sh` checks the
same grammar again on the receiving host.
"""

from __future__ import annotations

import base64
import re

import pulumi

# 32 bytes in base64: 43 characters, the last one carrying 4 bits (so one of 16), then '='.
# wireguard-tools' key_from_base64 accepts exactly this (non-zero padding bits are refused).
PUBLIC_KEY = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="
_KEY_OUTPUT = re.compile(rf"({PUBLIC_KEY})\n?")
_IPV4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_CIDR = rf"{_IPV4}/(?:3[0-2]|[12]?[0-9])"
_HOST = rf"(?:{_IPV4}|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{{0,251}}[A-Za-z0-9])?)"
_NUMBER = r"[0-9]{1,5}"
# Every line a mesh config may hold. Keep in step with valid_line() in wg-apply.sh.
CONFIG_LINE = re.compile(
    r"|#[ -~]*|\[Interface\]|\[Peer\]"
    rf"|Address = {_CIDR}|ListenPort = {_NUMBER}|MTU = {_NUMBER}|Table = off"
    rf"|PublicKey = {PUBLIC_KEY}|AllowedIPs = {_CIDR}(?:, {_CIDR})*"
    rf"|Endpoint = {_HOST}:{_NUMBER}|PersistentKeepalive = {_NUMBER}"
)


class HostOutputError(pulumi.RunError):
    """A host printed something other than what its step must print. Raised inside the
    Outputs of that host's own next step, so the run fails there, naming the host."""


def public_key(stdout: str) -> str | None:
    """The key, when `stdout` is exactly one canonical WireGuard public key line; else None."""
    match = _KEY_OUTPUT.fullmatch(stdout)
    if match is None or len(base64.b64decode(match.group(1), validate=True)) != 32:
        return None
    return match.group(1)


def require_public_key(step: str, host: str, stdout: str) -> str:
    """The key `host` printed in `step`, or HostOutputError naming both. Never echoes the output:
    it may be huge or hostile; its size is enough to tell what went wrong."""
    key = public_key(stdout)
    if key is None:
        lines = stdout.count("\n") + (not stdout.endswith("\n") and bool(stdout))
        raise HostOutputError(
            f"{step}: host '{host}' printed {len(stdout.encode())} bytes in {lines} line(s), not one WireGuard public key "
            f"(44 base64 characters); no peer takes it and its peers leave it out. Check `wg pubkey < /etc/wireguard/wg0.key` "
            f"on {host} (is it compromised?), then run `pulumi up` again."
        )
    return key


def require_distinct_keys(step: str, keys: list[tuple[str, str]]) -> None:
    """HostOutputError naming the holders when two of `keys` ((holder, key); "" is no key) are equal.
    WireGuard keeps one peer per key: a second [Peer] with a key replaces the first one's
    AllowedIPs, so a host printing another's key would cut that host out. A key is public, so
    any host can print any other's: no config holding one twice is sent; whoever is honest,
    the hosts' current configs stay as they are."""
    holders: dict[str, list[str]] = {}
    for holder, key in keys:
        if key:
            holders.setdefault(key, []).append(holder)
    shared = sorted(" and ".join(f"'{h}'" for h in sorted(names)) for names in holders.values() if len(names) > 1)
    if shared:
        raise HostOutputError(
            f"{step}: {'; '.join(shared)} have the same WireGuard public key; a config holding it twice would cut one "
            f"of them out, so none is sent. One of them printed another's key (is it compromised?): check "
            f"`wg pubkey < /etc/wireguard/wg0.key` on each, then run `pulumi up` again."
        )


def check_config(host: str, text: str) -> str:
    """`text` if every line is one the mesh writes; ValueError naming the host and line otherwise."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not CONFIG_LINE.fullmatch(line):
            raise ValueError(f"mesh config of '{host}': line {number} is not a line the mesh writes; refusing it")
    if sum(line == "[Interface]" for line in lines) != 1:
        raise ValueError(f"mesh config of '{host}': it must have exactly one [Interface] section")
    return text
