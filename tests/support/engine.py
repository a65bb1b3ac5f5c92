"""The real Pulumi CLI (`make engine` builds it) driving one stack of an inline program through the
automation API, on a local file backend with the passphrase secrets provider."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pulumi import automation as auto

from tests.support.helpers import PROJECT, unavailable

ENGINE = PROJECT / ".engine"


class Engine:
    """One stack of one inline program, driven through the real CLI; every line it prints is kept."""

    def __init__(self, root: Path, program: Callable[[], None], stack: str = "lab", project: str = "hybrid-ai-lab",
                 env: dict[str, str] | None = None) -> None:
        cli = ENGINE / "bin" / "pulumi"
        if not cli.exists():
            unavailable(f"the Pulumi CLI is not built ({cli}): run `make engine`")
        self.state = root / "state"
        self.state.mkdir()
        self.passphrase = secrets.token_hex(16)
        env = {
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_HOME": str(root / "home"),  # no plugin or credential of the machine leaks in
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        } | (env or {})
        settings = auto.ProjectSettings(name=project, runtime="python")
        ws = auto.LocalWorkspaceOptions(
            work_dir=str(root), project_settings=settings, env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(ENGINE)),
        )
        self.stack = auto.create_stack(stack, project_name=settings.name, program=program, opts=ws)
        self.root, self.env = root, env
        self.log: list[str] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI itself on this stack (what the automation API does not wrap)."""
        return subprocess.run([str(ENGINE / "bin" / "pulumi"), *args, "--stack", self.stack.name, "--non-interactive"],
                              cwd=self.root, env={**self.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                              check=False, timeout=120)

    def out(self, line: str) -> None:
        self.log.append(line)

    def summary(self, since: int, op: str, seconds: float | None = None) -> list[str]:
        """The CLI's own `Resources:` block of the last operation, printed to the test log."""
        lines = self.log[since:]
        start = next(i for i, line in enumerate(lines) if line.strip() == "Resources:")
        block = []
        for line in lines[start:]:
            if not line.strip() or line.lstrip().startswith("Duration"):
                break
            block.append(line.rstrip())
        took = f"  ({seconds:.1f} s)" if seconds is not None else ""
        print(f"\n$ pulumi {op}{took}", *block, sep="\n", flush=True)
        return block

    def preview(self, label: str = "preview") -> list[str]:
        mark, start = len(self.log), time.monotonic()
        self.stack.preview(on_output=self.out, color="never")
        return self.summary(mark, label, time.monotonic() - start)

    def up(self, label: str = "up") -> tuple[auto.UpResult, list[str]]:
        mark, start = len(self.log), time.monotonic()
        result = self.stack.up(on_output=self.out, color="never")
        return result, self.summary(mark, label, time.monotonic() - start)

    def destroy(self, label: str = "destroy") -> list[str]:
        mark, start = len(self.log), time.monotonic()
        self.stack.destroy(on_output=self.out, color="never")
        return self.summary(mark, label, time.monotonic() - start)

    def state_file(self) -> str:
        files = list(self.state.rglob(f"{self.stack.name}.json"))
        assert len(files) == 1, f"one state file expected under {self.state}: {files}"
        return files[0].read_text()

    def urns(self) -> set[str]:
        deployment = self.stack.export_stack().deployment
        return {r["urn"] for r in (deployment or {}).get("resources", [])}
