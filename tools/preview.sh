#!/usr/bin/env bash
# `make preview` and the pull-request preview workflow (.github/workflows/preview.yml): `pulumi
# preview --diff` of STACK (default dev) with the policy pack, run in a scratch copy of the
# project so that nothing the CLI writes (an `encryptionsalt`, a throwaway key, realigned
# comments) reaches a tracked file. The program's code is linked into the copy, not copied.
# With the Pulumi CLI on PATH: a full preview, on your backend if you are logged in to one,
# else on a scratch file backend. Without it, but with the CLI `make engine` built: that CLI
# runs the program as far as the plugins on this machine allow (the lab's example stack
# whole), and says what it could and could not do (tools/preview_engine.py).
# PREVIEW_LOG=<file>: the preview's output is also written there (the workflow comments it).
set -euo pipefail
STACK=${STACK:-dev}
cd "$(dirname "$0")/.."
project=$PWD
engine_bin=${ENGINE_BIN:-$project/.engine/bin}

if [ ! -f "Pulumi.$STACK.yaml" ]; then
  echo "preview: no stack file Pulumi.$STACK.yaml; a stack is a Pulumi.<name>.yaml at the top level (make preview STACK=<name>)" >&2
  exit 1
fi

if ! command -v pulumi >/dev/null 2>&1; then
  if [ -x "$engine_bin/pulumi" ]; then
    exec "$project/.venv/bin/python" -m tools.preview_engine --stack "$STACK" --engine "$engine_bin"
  fi
  cat >&2 <<'HINT'
make preview needs the Pulumi CLI, which is not installed. Install it with
`curl -fsSL https://get.pulumi.com | sh` (or see https://www.pulumi.com/docs/install/),
open a new shell and run `make preview` again (`make engine` builds the CLI from its Go
module, without the plugins a full preview needs). Without the CLI, `make render STACK=<name>`
shows the whole plan offline (plan.json, graph and host artifacts under build/<name>/).
HINT
  exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/hybrid-ai-preview.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cp Pulumi.yaml "Pulumi.$STACK.yaml" "$scratch/"
for part in __main__.py components stacks charts .venv; do
  ln -s "$project/$part" "$scratch/$part"
done
cd "$scratch"

if pulumi whoami >/dev/null 2>&1; then
  if ! pulumi stack select "$STACK" --non-interactive 2>/dev/null; then
    echo "preview: your backend ($(pulumi whoami --verbose 2>/dev/null | sed -n 's/^Backend URL: //p')) has no stack '$STACK';" \
      "create it in the project directory (pulumi stack init $STACK, then its secrets) and commit what that writes to Pulumi.$STACK.yaml" >&2
    exit 1
  fi
else
  export PULUMI_BACKEND_URL="file://$scratch/state"
  mkdir -p "$scratch/state"
  echo "preview: not logged in to a Pulumi backend; previewing on a scratch file backend (every resource shows as new)" >&2
  if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    if [ "$STACK" != dev ] && [ "$STACK" != lab ]; then
      echo "preview: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to read stack '$STACK''s secrets" >&2
      exit 1
    fi
    # The dev and lab stacks hold documentation addresses and no secret of their own.
    export PULUMI_CONFIG_PASSPHRASE=""
  fi
  pulumi stack init "$STACK" --non-interactive >/dev/null
fi

if { [ "$STACK" = dev ] || [ "$STACK" = lab ]; } && ! pulumi config get sshPrivateKey >/dev/null 2>&1; then
  # Preview never connects to hosts; a throwaway key (in the scratch copy only) lets the
  # documentation-range dev and lab stacks preview out of the box.
  ssh-keygen -q -t ed25519 -N '' -C hybrid-ai-dev-throwaway -f "$scratch/dev-ssh-key"
  pulumi config set --secret sshPrivateKey < "$scratch/dev-ssh-key"
  echo "preview: a throwaway sshPrivateKey for the $STACK stack (scratch copy only)" >&2
fi

# The policy pack as CrossGuard runs it: its files linked, its venv the project's (pulumi-policy
# is pinned in requirements-dev.txt), so the project gets no policy/venv.
mkdir "$scratch/policy"
for part in "$project"/policy/*; do
  [ "$(basename "$part")" = venv ] || ln -s "$part" "$scratch/policy/"
done
ln -s "$project/.venv" "$scratch/policy/venv"

status=0
pulumi preview --stack "$STACK" --diff --policy-pack "$scratch/policy" "$@" 2>&1 | tee "${PREVIEW_LOG:-/dev/null}" || status=$?
exit "$status"
