#!/usr/bin/env bash
# `make preview`: select (or create) the stack and run `pulumi preview`.
# Uses a local file backend (.pulumi-local/) unless you are logged in to a backend already.
set -euo pipefail
STACK=${STACK:-dev}
cd "$(dirname "$0")/.."

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'HINT'
make preview needs the Pulumi CLI, which is not installed. Install it with
`curl -fsSL https://get.pulumi.com | sh` (or see https://www.pulumi.com/docs/install/),
open a new shell and run `make preview` again. Without the CLI, `make render STACK=<name>`
shows the whole plan offline (plan.json, graph and host artifacts under build/<name>/).
HINT
  exit 1
fi

if ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-local
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-local"
  echo "preview: not logged in to a Pulumi backend; using the local file backend in .pulumi-local/" >&2
  if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    if [ "$STACK" != dev ]; then
      echo "preview: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to encrypt stack '$STACK''s secrets" >&2
      exit 1
    fi
    # The dev stack holds documentation addresses and a throwaway key only.
    export PULUMI_CONFIG_PASSPHRASE=""
  fi
fi

pulumi stack select --create "$STACK" --non-interactive

if [ "$STACK" = dev ] && ! pulumi config get sshPrivateKey >/dev/null 2>&1; then
  # Preview never connects to hosts; a throwaway key lets the documentation-range dev
  # stack preview out of the box. Replace it for real hosts (see README).
  key=.pulumi-local/dev-ssh-key
  mkdir -p .pulumi-local
  [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C hybrid-ai-dev-throwaway -f "$key"
  pulumi config set --secret sshPrivateKey < "$key"
  echo "preview: set a throwaway sshPrivateKey for the dev stack ($key)" >&2
fi

exec pulumi preview --stack "$STACK" --diff "$@"
