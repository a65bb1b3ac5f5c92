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
# After a reboot the host is given longer, still bounded: 40 x 15 s = 10 minutes.
REBOOT_DIAL_ERROR_LIMIT = 40
# Long-running host steps (apt, drivers, snaps) still get a ceiling.
COMMAND_TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="15m")


def command_options(parent: pulumi.Resource, *, secret_output: bool = False) -> pulumi.ResourceOptions:
    """Options of a remote command: its parent, bounded timeouts, and for commands that may
    print a secret (a token, a kubeconfig), stdout and stderr kept secret in the state."""
    return pulumi.ResourceOptions(
        parent=parent, custom_timeouts=COMMAND_TIMEOUTS,
        additional_secret_outputs=["stdout", "stderr"] if secret_output else None,
    )


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


def after(value: pulumi.Input[str], *done: pulumi.Output[Any]) -> pulumi.Output[str]:
    """`value`, resolving only once every `done` output has: it carries their resources as
    dependencies into whatever uses it, with no `depends_on`."""
    return pulumi.Output.all(value, *done).apply(lambda v: str(v[0]))


@dataclass(frozen=True)
class SshTarget:
    """Where a remote command runs. The address may carry dependencies (see `after`)."""

    address: pulumi.Input[str]
    host_key: pulumi.Input[str]
    login: SshLogin

    @property
    def sudo(self) -> bool:
        return self.login.needs_sudo

    @property
    def connection(self) -> remote.ConnectionArgs:
        """A connection that always pins the host key and gives up quickly on a dead host."""
        return self._connection(DIAL_ERROR_LIMIT)

    @property
    def patient_connection(self) -> remote.ConnectionArgs:
        """The same, waiting longer (still bounded) for a host that is rebooting."""
        return self._connection(REBOOT_DIAL_ERROR_LIMIT)

    def _connection(self, dial_error_limit: int) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.address,
            port=self.login.port,
            user=self.login.user,
            private_key=self.login.private_key,
            host_key=self.host_key,
            proxy=self.login.proxy,
            dial_error_limit=dial_error_limit,
            per_dial_timeout=PER_DIAL_TIMEOUT_S,
        )

    def after(self, *done: pulumi.Output[Any]) -> SshTarget:
        """This target for commands that must wait for `done`."""
        return SshTarget(after(self.address, *done), self.host_key, self.login)

    def as_proxy(self) -> remote.ProxyConnectionArgs:
        """This host as a jump host for others, pinned to its own host key like any connection
        (pulumi-command checks a proxy's key only when `host_key` is set)."""
        return remote.ProxyConnectionArgs(
            host=self.address,
            port=self.login.port,
            user=self.login.user,
            private_key=self.login.private_key,
            host_key=self.host_key,
            dial_error_limit=DIAL_ERROR_LIMIT,
            per_dial_timeout=PER_DIAL_TIMEOUT_S,
        )
