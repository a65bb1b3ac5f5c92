"""SSH connection settings shared by every remote command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

from components.kit.outputs import after

# A host that does not answer TCP fails after DIAL_ERROR_LIMIT + 1 connects of at most
# PER_DIAL_TIMEOUT_S (about a minute), its name in the resource URN. perDialTimeout bounds the
# TCP connect only (x/crypto's ClientConfig.Timeout), not the SSH handshake after it, and a
# dial through a jump host (pulumi-command 1.2.1 connection.go: `proxyClient.Dial`) has no
# timeout at all (the jump host's kernel gives up after about 2 minutes, per attempt). Those
# are bounded only by COMMAND_TIMEOUTS, and a dial in progress takes no context.
DIAL_ERROR_LIMIT = 4
PER_DIAL_TIMEOUT_S = 15
# pulumi-command pauses between failed dials 100 ms x 1.5^n, at most 5 s (pulumi's retry.Until
# defaults); a refused dial (sshd down during a reboot) returns at once, so only the pauses count.
DIAL_PAUSE_FIRST_S, DIAL_PAUSE_GROWTH, DIAL_PAUSE_MAX_S = 0.1, 1.5, 5.0
# After a reboot (shutdown, POST, boot to sshd) the host is given at least this long, still bounded.
REBOOT_WAIT_S = 600


def refused_dial_budget_s(dial_error_limit: int) -> float:
    """Seconds pulumi-command keeps dialing a host that refuses at once: `limit` failed dials are
    allowed and the next one ends it, so `limit` pauses."""
    return sum(min(DIAL_PAUSE_FIRST_S * DIAL_PAUSE_GROWTH**n, DIAL_PAUSE_MAX_S) for n in range(dial_error_limit))


def dial_error_limit_for(wait_s: float) -> int:
    """The smallest dial error limit whose refused-dial budget is at least `wait_s`."""
    limit = 0
    while refused_dial_budget_s(limit) < wait_s:
        limit += 1
    return limit


# 128 here: about 10 minutes when every dial is refused. A TCP connect that hangs adds up to
# 4 s each (~19 minutes in all, within the step's 30-minute timeout); a stalled handshake, or a
# host behind a jump host, has no such bound (see above).
REBOOT_DIAL_ERROR_LIMIT = dial_error_limit_for(REBOOT_WAIT_S)
REBOOT_PER_DIAL_TIMEOUT_S = 4
# The provider stops retrying dials at these (a dial in progress runs on), but a command that
# is running has no ceiling: pulumi-command 1.2.1's session.Run takes no context.
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
        return self._connection(DIAL_ERROR_LIMIT, PER_DIAL_TIMEOUT_S)

    @property
    def patient_connection(self) -> remote.ConnectionArgs:
        """The same, waiting longer (still bounded) for a host that is rebooting."""
        return self._connection(REBOOT_DIAL_ERROR_LIMIT, REBOOT_PER_DIAL_TIMEOUT_S)

    def _connection(self, dial_error_limit: int, per_dial_timeout: int) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(
            host=self.address,
            port=self.login.port,
            user=self.login.user,
            private_key=self.login.private_key,
            host_key=self.host_key,
            proxy=self.login.proxy,
            dial_error_limit=dial_error_limit,
            per_dial_timeout=per_dial_timeout,
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
