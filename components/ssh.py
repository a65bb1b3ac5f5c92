"""SSH connection settings shared by every remote command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

# An unreachable host fails after DIAL_ERROR_LIMIT x PER_DIAL_TIMEOUT_S (about a minute),
# with the host's name in the resource URN, instead of the provider's much longer default.
DIAL_ERROR_LIMIT = 4
PER_DIAL_TIMEOUT_S = 15
# Long-running host steps (apt, drivers, snaps) still get a ceiling.
COMMAND_TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="15m")


@dataclass(frozen=True)
class SshLogin:
    """Who to log in as and with which key; `private_key` must be a Pulumi secret."""

    user: str
    port: int
    private_key: pulumi.Input[str]
    proxy: remote.ProxyConnectionArgs | None = None

    @property
    def needs_sudo(self) -> bool:
        return self.user != "root"


def connection(address: pulumi.Input[str], host_key: pulumi.Input[str], login: SshLogin) -> remote.ConnectionArgs:
    """A connection that always pins the host key and gives up quickly on a dead host."""
    return remote.ConnectionArgs(
        host=address,
        port=login.port,
        user=login.user,
        private_key=login.private_key,
        host_key=host_key,
        proxy=login.proxy,
        dial_error_limit=DIAL_ERROR_LIMIT,
        per_dial_timeout=PER_DIAL_TIMEOUT_S,
    )


def as_proxy(address: pulumi.Input[str], login: SshLogin) -> remote.ProxyConnectionArgs:
    """This host as a jump host for others."""
    return remote.ProxyConnectionArgs(
        host=address,
        port=login.port,
        user=login.user,
        private_key=login.private_key,
        dial_error_limit=DIAL_ERROR_LIMIT,
        per_dial_timeout=PER_DIAL_TIMEOUT_S,
    )


@dataclass(frozen=True)
class SshTarget:
    """Where a remote command runs: the connection, and whether to wrap it in sudo."""

    connection: remote.ConnectionArgs
    sudo: bool


def after(value: pulumi.Input[str], *done: pulumi.Output[Any]) -> pulumi.Output[str]:
    """`value`, resolving only once every `done` output has: it carries their resources as
    dependencies into whatever uses it, with no `depends_on`."""
    return pulumi.Output.all(value, *done).apply(lambda v: str(v[0]))


def target_after(address: pulumi.Input[str], host_key: pulumi.Input[str], login: SshLogin, *done: pulumi.Output[Any]) -> SshTarget:
    """An SshTarget for commands that must wait for `done`."""
    return SshTarget(connection(after(address, *done), host_key, login), login.needs_sudo)
