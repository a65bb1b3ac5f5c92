"""`make preview` with the CLI `make engine` built, when no Pulumi CLI is installed.

That CLI is the real engine at its pinned version, but it comes without the Python language
host and without resource plugins (the Go module proxy serves neither pulumi-language-python
nor pulumi-command). So the program runs in this process as an inline program, served to the
CLI through the automation API (as `make e2e-engine` does), on a scratch copy of the stack file
and a scratch file backend: nothing is written to the project. The engine checks the config
and registers the program's resources until the first one whose provider plugin is missing,
and this says which plugin stopped it and what the preview could and could not show.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
MISSING_PLUGIN = re.compile(r"no resource plugin '(pulumi-resource-[\w-]+)' found")


def _cli_version(cli: Path) -> str:
    done = subprocess.run([str(cli), "version"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or "(unknown version)"


def explain(log: str, stack: str, version: str, succeeded: bool) -> str:
    """The plain account of what this preview did and could not do on this machine."""
    head = f"preview: the CLI built by `make engine` ({version}) ran the program for stack '{stack}' on a scratch backend."
    if succeeded:
        return head + " The preview above is complete."
    missing = sorted(set(MISSING_PLUGIN.findall(log)))
    if not missing:
        return head + " It failed before any provider was needed: the error above is the program's or the config's."
    summary = re.findall(r"^\s*\+ (\d+) to create", log, re.M)
    so_far = f"showed {summary[-1]} resources to create" if summary else "registered the program's first resources"
    return "\n".join([
        head,
        f"It checked the config and {so_far}, then stopped: this machine has no {', '.join(missing)} plugin "
        "(`make engine` builds the CLI and the Kubernetes provider only), so the resources of that provider and everything after them are not in this preview.",
        "For the whole plan offline: make render STACK=" + stack + " (build/" + stack + "/plan.json). For a full "
        "preview: install the Pulumi CLI with its plugins (https://www.pulumi.com/docs/install/).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make preview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--engine", type=Path, default=PROJECT_DIR / ".engine" / "bin", help="folder holding the built `pulumi`")
    args = parser.parse_args(argv)
    stack_file = PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        print(f"preview: no stack file {stack_file.name}", file=sys.stderr)
        return 1
    passphrase = os.environ.get("PULUMI_CONFIG_PASSPHRASE")
    if passphrase is None and args.stack != "dev" and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        print(f"preview: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to read stack '{args.stack}''s secrets",
              file=sys.stderr)
        return 1
    from pulumi import automation as auto

    from stacks.program import main as program

    cli = args.engine.resolve() / "pulumi"
    version = _cli_version(cli)
    with tempfile.TemporaryDirectory(prefix="hybrid-ai-preview.") as scratch:
        work = Path(scratch)
        shutil.copy(stack_file, work / stack_file.name)
        (work / "state").mkdir()
        env = {
            "PULUMI_BACKEND_URL": f"file://{work / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": passphrase or "",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",  # no downloads: what is here is what runs
            "PATH": f"{cli.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # plugins built beside the CLI are found
        }
        print(f"preview: no Pulumi CLI on PATH; using the one `make engine` built ({cli}, {version}) on a scratch backend",
              file=sys.stderr)
        settings = auto.ProjectSettings(name="hybrid-ai", runtime="python")
        ws = auto.LocalWorkspaceOptions(work_dir=scratch, project_settings=settings, env_vars=env,
                                        pulumi_command=auto.PulumiCommand(root=str(cli.parent.parent)))
        log: list[str] = []

        def out(line: str) -> None:
            log.append(line)
            print(line, flush=True)

        stack = auto.create_stack(args.stack, project_name=settings.name, program=program, opts=ws)
        if args.stack == "dev" and "sshPrivateKey" not in stack.get_all_config() and "hybrid-ai:sshPrivateKey" not in stack.get_all_config():
            # Preview never connects to hosts: a throwaway value, in the scratch copy only.
            stack.set_config("sshPrivateKey", auto.ConfigValue("throwaway-key-for-preview", secret=True))
        try:
            stack.preview(on_output=out, color="never", diff=True)
            succeeded = True
        except auto.errors.CommandError as failed:
            log.append(str(failed))
            succeeded = False
        print(explain("\n".join(log), args.stack, version, succeeded), file=sys.stderr)
        return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
