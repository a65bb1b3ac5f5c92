#!/usr/bin/env bash
# The deploy runner's pre-job hook (ACTIONS_RUNNER_HOOK_JOB_STARTED in the runner's .env; see
# docs/deploy-runner.md). It lives on the runner machine, outside the runner's directory, so no
# pull request can change it; a non-zero exit stops the job before any of its steps run. It
# admits only this repository's deploy.yml and drift.yml, from main, on push, schedule or
# workflow_dispatch: a job from a pull request, another branch, another workflow file (a pull
# request's own, naming this runner's labels) or another repository never runs here.
# Reads the runner's default variables (GITHUB_REPOSITORY, GITHUB_EVENT_NAME, GITHUB_REF,
# GITHUB_WORKFLOW_REF) and DEPLOY_REPOSITORY (owner/name, set in the runner's .env).
set -euo pipefail

refuse() {
  echo "hybrid-ai deploy runner: refusing this job: $*" >&2
  exit 1
}

[ -n "${DEPLOY_REPOSITORY:-}" ] || refuse "DEPLOY_REPOSITORY is not set in the runner's .env (owner/name of the hybrid-ai repository)"
[ "${GITHUB_REPOSITORY:-}" = "$DEPLOY_REPOSITORY" ] || refuse "repository '${GITHUB_REPOSITORY:-}' is not $DEPLOY_REPOSITORY"
case ${GITHUB_EVENT_NAME:-} in
  push | schedule | workflow_dispatch) ;;
  *) refuse "event '${GITHUB_EVENT_NAME:-}' (only push, schedule and workflow_dispatch on main deploy)" ;;
esac
[ "${GITHUB_REF:-}" = refs/heads/main ] || refuse "ref '${GITHUB_REF:-}' is not refs/heads/main"
case ${GITHUB_WORKFLOW_REF:-} in
  "$DEPLOY_REPOSITORY/.github/workflows/deploy.yml@refs/heads/main" | "$DEPLOY_REPOSITORY/.github/workflows/drift.yml@refs/heads/main") ;;
  *) refuse "workflow '${GITHUB_WORKFLOW_REF:-}' is not deploy.yml or drift.yml on main" ;;
esac
echo "hybrid-ai deploy runner: ${GITHUB_WORKFLOW_REF} (${GITHUB_EVENT_NAME}) admitted"
