# hybrid-ai: `make venv` once, then `make preview` (main job) and `make test`.
STACK ?= dev
OUT ?= build/$(STACK)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Bytecode is cached (the program's in __pycache__/, ignored by git; the libraries' is what pip
# compiled into the venv): without it each run compiled the program's modules again, ~0.15-0.25 s
# of its 1 s import budget. A PYTHONPYCACHEPREFIX would make Python pass over the venv's own
# bytecode and compile every library again on a fresh clone (~3 s cold; docs/performance.md).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv preview render check docs bench bench-render golden test lint typecheck unit e2e engine crds command-standin e2e-engine e2e-kube lab-up lab-down clean

TOOLS := .venv-tools

venv: $(VENV)/.installed $(TOOLS)/.installed

# pip prints a line per package it collects and installs: a fresh venv takes a few minutes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "venv 1/2: $(VENV), the program's and the tests' pinned dependencies (requirements-dev.txt)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	touch $@
	@echo "venv 1/2: done"

$(TOOLS)/.installed: requirements-tools.txt
	@echo "venv 2/2: $(TOOLS), checkov (it cannot share a venv with the program's dependencies)"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check --progress-bar off -r requirements-tools.txt
	touch $@
	@echo "venv 2/2: done"

## preview: `pulumi preview --diff` of STACK (default dev) with the policy pack, local backend unless
# logged in elsewhere; the pull-request preview workflow runs it too (tools/preview.sh)
preview: $(VENV)/.installed
	STACK=$(STACK) bash tools/preview.sh

## render: the plan of STACK offline (no CLI, no credentials) into OUT
render: venv
	$(PY) -m tools.render --stack $(STACK) --out $(OUT)

## mirror: the manifest of every artifact STACK's hosts and the operator fetch; RESOLVE=1: lock its images by
# digest (stacks/locks/STACK.yaml); LAYOUT=DIR: fetch them all into DIR to carry to the site (docs/airgap.md)
.PHONY: mirror
mirror: venv $(if $(RESOLVE)$(LAYOUT),.engine/bin/crane)
	$(PY) -m tools.mirror --stack $(STACK) $(if $(RESOLVE),--resolve) $(if $(LAYOUT),--layout "$(LAYOUT)") $(foreach s,$(SOURCES),--source "$(s)") $(if $(SIGN_KEY),--sign-key "$(SIGN_KEY)") $(if $(VALID_DAYS),--valid-days "$(VALID_DAYS)")

## diff: what `pulumi preview --diff` would show from BASE (a git ref) to the working tree, offline
# (exit 0: no changes, 1: changes, 2: could not diff); STACK as for render
# make exits 1 only in question mode (-q): any failing recipe makes it exit 2. So `make diff`
# alone runs the diff while the Makefile is read, prints it, and on "changes" turns question
# mode on (MAKEFLAGS set in a makefile applies to it), where a phony target is out of date: 1.
.PHONY: diff
ifeq ($(MAKECMDGOALS)$(findstring n,$(firstword -$(MAKEFLAGS))),diff)
$(if $(BASE),,$(error BASE is required, e.g. make diff BASE=origin/main))
DIFF_OUT := $(shell mktemp)
DIFF_STATUS := $(shell if [ -x $(PY) ]; then $(PY) -m tools.render.diff --base "$(BASE)" --stack "$(STACK)" >$(DIFF_OUT); \
  else echo "diff: no $(PY): run make venv first" >&2; exit 2; fi)$(.SHELLSTATUS)
$(if $(file <$(DIFF_OUT)),$(info $(file <$(DIFF_OUT))))$(shell rm -f $(DIFF_OUT))
ifeq ($(DIFF_STATUS),1)
MAKEFLAGS += -q
endif
diff:
	@exit $(DIFF_STATUS)
else
diff: venv
	$(if $(BASE),,$(error BASE is required, e.g. make diff BASE=origin/main))
	$(PY) -m tools.render.diff --base "$(BASE)" --stack $(STACK)
endif

## check: the render of STACK plus every policy of the pack (policy/rules.py) against its plan, offline
# (what `pulumi preview --policy-pack policy` would refuse); POLICY_CONFIG: a --policy-pack-config JSON
check: venv
	$(PY) -m tools.check --stack $(STACK) --out $(OUT) $(if $(POLICY_CONFIG),--policy-config "$(POLICY_CONFIG)")

## docs: regenerate docs/config.md from the schema
docs: venv
	$(PY) -m tools.docs --write docs/config.md

## bench: the program under the real Pulumi CLI, timed on the engine lab and a large fleet (root;
# build/bench.json, and its table into docs/performance.md); not part of make test
bench: venv engine command-standin
	$(PY) -m tests.support.bench --docs

## bench-render: the mock render against what the Pulumi SDK alone needs (build/bench-render.json)
bench-render: venv
	$(PY) -m tools.bench

## golden: refresh the render digests of the example stacks (after an intended plan change)
golden: venv
	$(PY) -m tests.support.golden

## test: lint, types, unit and mock tests, script tests, and the end-to-end lab
# (the lab runs alone: its timing checks must not compete for the CPU with other tests)
test: lint typecheck unit e2e e2e-engine e2e-kube

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) -m components.kit.shell lint
	shellcheck tools/*.sh engine/*.sh engine/*/*.sh engine/crds/*/*.sh .ci/run tools/lab/shims/*
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --min-severity medium .github/

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not e2e"

e2e: venv
	$(PY) -m pytest -q -m "e2e and not engine"

## engine: the Pulumi CLI, the pulumi-kubernetes provider, a Kubernetes control plane
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok) and the NVIDIA
# device plugin (the tests parse the GPU sharing configs with it) built from their
# Go modules into .engine/bin, and upstream's CRDs generated from their Go API types into
# .engine/crds (versions in engine/*/go.mod; docs/engine.md). Go's module and build caches stay
# in their default places, so a warm machine only relinks; each group is rebuilt only when its
# go.mod or go.sum changes.
ENGINE_BIN := .engine/bin
ENGINE_CRDS := .engine/crds
KUBE_BINS := $(addprefix $(ENGINE_BIN)/,kube-apiserver kube-controller-manager kube-scheduler kubectl)
CRD_GROUPS := gateway-api cert-manager prometheus-operator
engine: $(ENGINE_BIN)/pulumi $(ENGINE_BIN)/pulumi-resource-kubernetes $(KUBE_BINS) \
  $(ENGINE_BIN)/etcd $(ENGINE_BIN)/kwok $(ENGINE_BIN)/nvidia-device-plugin $(ENGINE_BIN)/prometheus-adapter $(ENGINE_BIN)/crane crds

$(ENGINE_BIN)/pulumi: engine/pulumi/go.mod engine/pulumi/go.sum
	bash engine/build.sh pulumi github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
	  -- github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=@VERSION@

# The provider module is served only at a pseudo-version (the commit tagged v4.25.0), so its
# version stamp is spelled out; engine/pulumi-kubernetes/prepare.sh makes the schema it embeds.
PULUMI_KUBERNETES_VERSION := 4.25.0
$(ENGINE_BIN)/pulumi-resource-kubernetes: engine/pulumi-kubernetes/go.mod engine/pulumi-kubernetes/go.sum \
  engine/pulumi-kubernetes/prepare.sh
	PROVIDER_VERSION=$(PULUMI_KUBERNETES_VERSION) bash engine/build.sh pulumi-kubernetes \
	  github.com/pulumi/pulumi-kubernetes/provider/v4 \
	  ./cmd/pulumi-resource-kubernetes \
	  -- github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$(PULUMI_KUBERNETES_VERSION)

# kubectl refuses a server whose version it cannot parse: both version packages are stamped
# as upstream's hack/lib/version.sh does.
KUBE_VERSION_STAMPS := $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version, \
  $(pkg).gitVersion=@VERSION@ $(pkg).gitMajor=@MAJOR@ $(pkg).gitMinor=@MINOR@ \
  $(pkg).gitTreeState=clean $(pkg).buildDate=@DATE@)
$(KUBE_BINS) &: engine/kubernetes/go.mod engine/kubernetes/go.sum
	bash engine/build.sh kubernetes k8s.io/kubernetes $(addprefix k8s.io/kubernetes/cmd/,$(notdir $(KUBE_BINS))) \
	  -- $(KUBE_VERSION_STAMPS)

$(ENGINE_BIN)/etcd: engine/etcd/go.mod engine/etcd/go.sum
	bash engine/build.sh etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3=etcd

$(ENGINE_BIN)/kwok: engine/kwok/go.mod engine/kwok/go.sum
	bash engine/build.sh kwok sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok -- sigs.k8s.io/kwok/pkg/consts.Version=@SEMVER@

## crds: upstream's CRDs for the custom resources the program creates, generated from the Go API
# types with controller-tools at the versions upstream generates them with (engine/crds/*)
crds: $(addprefix $(ENGINE_CRDS)/,$(addsuffix /.generated,$(CRD_GROUPS)))

$(ENGINE_CRDS)/%/.generated: engine/crds/%/go.mod engine/crds/%/go.sum engine/crds/%/generate.sh \
  engine/crds/build.sh engine/crds/check.py | venv
	PY=$(abspath $(PY)) bash engine/crds/build.sh $*

# The device plugin at the chart's version (cgo: go-nvml); the tests parse the sharing configs with it.
# crane (go-containerregistry): `make mirror` resolves image digests and lays out images with it
$(ENGINE_BIN)/crane: engine/crane/go.mod engine/crane/go.sum
	bash engine/build.sh crane github.com/google/go-containerregistry github.com/google/go-containerregistry/cmd/crane

$(ENGINE_BIN)/nvidia-device-plugin: engine/nvidia-device-plugin/go.mod engine/nvidia-device-plugin/go.sum
	bash engine/build.sh nvidia-device-plugin github.com/NVIDIA/k8s-device-plugin \
	  github.com/NVIDIA/k8s-device-plugin/cmd/nvidia-device-plugin \
	  -- github.com/NVIDIA/k8s-device-plugin/internal/info.version=@VERSION@

# prometheus-adapter at the chart's app version; the tests load the rules config the program
# writes with it, against the lab's API server.
$(ENGINE_BIN)/prometheus-adapter: engine/prometheus-adapter/go.mod engine/prometheus-adapter/go.sum
	bash engine/build.sh prometheus-adapter sigs.k8s.io/prometheus-adapter \
	  sigs.k8s.io/prometheus-adapter/cmd/adapter=prometheus-adapter

## command-standin: the lab's test-only stand-in for the pulumi-command provider, built from
# tools/lab/command-standin into .engine/standin (never on a user's PATH, nor next to the CLI,
# whose automation API puts its own folder first on PATH: a test opts in by adding this folder)
STANDIN_SRC := tools/lab/command-standin
command-standin: .engine/standin/pulumi-resource-command

.engine/standin/pulumi-resource-command: $(STANDIN_SRC)/go.mod $(STANDIN_SRC)/go.sum $(wildcard $(STANDIN_SRC)/*.go $(STANDIN_SRC)/*/*.go) \
  engine/build.sh
	OUT=.engine/standin bash engine/build.sh ./$(STANDIN_SRC) hybrid-ai/$(STANDIN_SRC) .=pulumi-resource-command

## e2e-engine: the real Pulumi CLI on a local file backend (alone: it competes for the CPU)
e2e-engine: venv engine command-standin
	$(PY) -m pytest -q -s -m "engine and not kube"

## e2e-kube: the dev stack's Kubernetes layer applied by the real CLI and pulumi-kubernetes provider
# to a real kube-apiserver (etcd, controller-manager, scheduler, kwok nodes) in a network namespace
# (docs/testing.md: what it proves and what it cannot); alone, like e2e-engine
e2e-kube: venv engine
	$(PY) -m pytest -q -s -m kube

## lab-up / lab-down: the reference lab with the program's layers below the cluster applied by the
# real Pulumi CLI and the pulumi-command stand-in, kept running to explore by hand (root); lab-down
# runs `pulumi destroy`, then removes the lab (tests/support/mesh_lab.py)
lab-up: venv $(ENGINE_BIN)/pulumi command-standin
	$(PY) -m tests.support.mesh_lab up

lab-down: venv
	$(PY) -m tests.support.mesh_lab down

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache .engine
