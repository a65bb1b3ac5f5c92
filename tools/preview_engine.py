"""`make preview` with the CLI `make engine` built, when no Pulumi CLI is installed.

That CLI is the real engine at its pinned version, but it comes without the Python language
host and without most plugins (the Go module proxy serves neither pulumi-language-python nor
pulumi-command). So the program runs in this process as an inline program, served to the CLI
through the automation API (tools/engine_stack.py, as `make e2e-engine` does), on a scratch copy
of the stack file and a scratch file backend: nothing is written to the project. The policy pack
cannot run (CrossGuard runs a Python pack through the language host); `make check` applies its
rules offline.

The lab's example stack (`Pulumi.lab.yaml`, the hosts of the namespace lab at documentation
addresses) previews whole: its pulumi-command provider is the lab's test-only stand-in
(.engine/standin, `make command-standin`) and its Kubernetes objects go through the
pulumi-kubernetes provider `make engine` built, with the kubeconfig unknown until `up`. For any
other stack the engine checks the config and registers the program's resources until the first
one whose provider plugin is missing, and this says which plugin stopped it and what the
preview could and could not show.
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
LAB_STACK = "lab"
STANDIN = PROJECT_DIR / ".engine" / "standin"
# Stacks of documentation addresses and no secret of their own: an empty passphrase and a
# throwaway SSH key (preview never connects to a host) let them preview out of the box.
OPEN_STACKS = ("dev", LAB_STACK)


def _cli_version(cli: Path) -> str:
    done = subprocess.run([str(cli), "version"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or "(unknown version)"


# The CLI's wrappers around a failed inline program; the traceback after them is this process's.
_WRAPPERS = ("error: python inline source runtime error", "error: an unhandled error occurred")


def cli_errors(failure: str) -> list[str]:
    """The CLI's `error:` lines of a failed run, each with its indented `  - ` items (the program's
    `invalid stack config` list), without the tracebacks; once each. Nothing in them is a value:
    the config errors never echo one."""
    stderr = failure.split("\n stderr: ", 1)[-1] if "\n stderr: " in failure else ""
    lines: list[str] = []
    keep = False
    for line in stderr.splitlines():
        if line.startswith("error: "):
            keep = not line.startswith(_WRAPPERS)
        elif not line.startswith("  - "):
            keep = False
        if keep and line not in lines:
            lines.append(line)
    return lines


def explain(log: str, stack: str, version: str, succeeded: bool) -> str:
    """The plain account of what this preview did and could not do on this machine."""
    head = f"preview: the CLI built by `make engine` ({version}) ran the program for stack '{stack}' on a scratch backend."
    policy = "The policy pack did not run (it needs the Python language host, which this build lacks): make check STACK=" + stack
    if succeeded and stack == LAB_STACK:
        return "\n".join([
            head + " The preview above is the real engine's plan of the whole program, Kubernetes objects included "
            "(through the pulumi-kubernetes provider `make engine` built).",
            "Its pulumi-command provider is the lab's test-only stand-in (.engine/standin): a preview dials no host, and the "
            "stand-in checks each command's inputs as pulumi-command 1.2.1 does (docs/upstream.md). Unknown until `up`: what "
            "the hosts print (WireGuard public keys, the cluster's join tokens) and the kubeconfig, so every Kubernetes "
            "object shows as created against a cluster that does not exist yet.",
            policy + " applies its rules offline.",
        ])
    if succeeded:
        return head + " The preview above is complete. " + policy + " applies its rules offline."
    missing = sorted(set(MISSING_PLUGIN.findall(log)))
    if not missing:
        return head + " It failed before any provider was needed: the error above is the program's or the config's; fix it and run `make preview` again."
    summary = re.findall(r"^\s*\+ (\d+) to create", log, re.M)
    so_far = f"showed {summary[-1]} resources to create" if summary else "registered the program's first resources"
    return "\n".join([
        head,
        f"It checked the config and {so_far}, then stopped: this machine has no {', '.join(missing)} plugin "
        "(`make engine` builds the CLI and the pulumi-kubernetes provider; pulumi-command is not served by the Go module "
        "proxy), so the resources of that provider and everything after them are not in this preview.",
        f"For the whole plan offline: make render STACK={stack} (build/{stack}/plan.json). The whole program under this "
        f"CLI: make preview STACK={LAB_STACK} (the lab's example stack). For a full preview of '{stack}': install the "
        "Pulumi CLI with its plugins (https://www.pulumi.com/docs/install/).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make preview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--engine", type=Path, default=PROJECT_DIR / ".engine" / "bin", help="folder holding the built `pulumi`")
    parser.add_argument("--dir", type=Path, default=PROJECT_DIR, help="folder holding Pulumi.<stack>.yaml (default: the project)")
    args = parser.parse_args(argv)
    stack_file = args.dir / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        print(f"preview: no stack file {stack_file.name}", file=sys.stderr)
        return 1
    passphrase = os.environ.get("PULUMI_CONFIG_PASSPHRASE")
    if passphrase is None and args.stack not in OPEN_STACKS and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        print(f"preview: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to read stack '{args.stack}''s secrets",
              file=sys.stderr)
        return 1
    plugins: list[Path] = []
    if args.stack == LAB_STACK:
        if not (STANDIN / "pulumi-resource-command").exists():
            print("preview: the lab's pulumi-command stand-in is not built: make command-standin", file=sys.stderr)
            return 1
        plugins.append(STANDIN)
    from pulumi import automation as auto

    from stacks.program import main as program
    from tools.engine_stack import open_stack, operate

    cli = args.engine.resolve() / "pulumi"
    version = _cli_version(cli)
    with tempfile.TemporaryDirectory(prefix="hybrid-ai-preview.") as scratch:
        work = Path(scratch)
        shutil.copy(stack_file, work / stack_file.name)
        print(f"preview: no Pulumi CLI on PATH; using the one `make engine` built ({cli}, {version}) on a scratch backend"
              + (", with the lab's pulumi-command stand-in" if plugins else ""), file=sys.stderr)
        stack = open_stack(work, project="hybrid-ai", program=program, passphrase=passphrase or "", plugin_dirs=plugins,
                           stack=args.stack, cli_root=cli.parent.parent)
        configured = stack.get_all_config()
        if args.stack in OPEN_STACKS and not {"sshPrivateKey", "hybrid-ai:sshPrivateKey"} & set(configured):
            # Preview never connects to hosts: a throwaway value, in the scratch copy only.
            stack.set_config("sshPrivateKey", auto.ConfigValue("throwaway-key-for-preview", secret=True))
        result = operate(stack, "preview", echo=True, diff=True)
        for line in cli_errors(result["error"]):
            print(line, file=sys.stderr)
        log = "\n".join([*result["log"], result["error"]])
        print(explain(log, args.stack, version, result["ok"]), file=sys.stderr)
        return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
