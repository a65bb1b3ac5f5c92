# hybrid-ai: `make venv` once, then `make preview` (main job) and `make test`.
STACK ?= dev
OUT ?= build/$(STACK)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Bytecode is cached (the program's in __pycache__/, ignored by git; the libraries' is what pip
# compiled into the venv): without it each run compiled the program's modules again, ~0.15-0.25 s
# of its 1 s import budget. A PYTHONPYCACHEPREFIX would make Python pass over the venv's own
# bytecode and compile every library again on a fresh clone (~3 s cold; README, Performance).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv preview render docs bench golden test lint typecheck unit e2e engine command-standin e2e-engine lab-up lab-down clean

TOOLS := .venv-tools

venv: $(VENV)/.installed $(TOOLS)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check -r requirements-tools.txt
	touch $@

## preview: `pulumi preview` of STACK (default dev), local backend unless logged in elsewhere
preview: venv
	STACK=$(STACK) bash tools/preview.sh

## render: the plan of STACK offline (no CLI, no credentials) into OUT
render: venv
	$(PY) -m tools.render --stack $(STACK) --out $(OUT)

## diff: what `pulumi preview --diff` would show from BASE (a git ref) to the working tree, offline
# (exit 0: no changes, 1: changes, 2: could not diff); STACK as for render
.PHONY: diff
diff: venv
	$(if $(BASE),,$(error BASE is required, e.g. make diff BASE=origin/main))
	$(PY) -m tools.render.diff --base "$(BASE)" --stack $(STACK)

## docs: regenerate docs/config.md from the schema
docs: venv
	$(PY) -m tools.docs > docs/config.md

## bench: the performance table (build/bench.json); not part of make test
bench: venv
	$(PY) -m tools.bench

## golden: refresh the render digests of the example stacks (after an intended plan change)
golden: venv
	$(PY) -m tests.support.golden

## test: lint, types, unit and mock tests, script tests, and the end-to-end lab
# (the lab runs alone: its timing checks must not compete for the CPU with other tests)
test: lint typecheck unit e2e e2e-engine

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) -m components.kit.shell lint
	shellcheck tools/*.sh engine/*.sh $(STANDIN_SRC)/*.sh .ci/run tools/lab/shims/*
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --min-severity medium .github/

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not e2e"

e2e: venv
	$(PY) -m pytest -q -m "e2e and not engine"

## engine: the Pulumi CLI built from its Go module into .engine/bin (versions in engine/*/go.mod)
# Go's module and build caches stay in their default places, so a warm machine only relinks;
# the binary is rebuilt only when its go.mod or go.sum changes.
ENGINE_BIN := .engine/bin
engine: $(ENGINE_BIN)/pulumi

$(ENGINE_BIN)/pulumi: engine/pulumi/go.mod engine/pulumi/go.sum
	bash engine/build.sh pulumi github.com/pulumi/pulumi/pkg/v3 github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
	  github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

## command-standin: the lab's test-only stand-in for the pulumi-command provider, built from
# tools/lab/command-standin into .engine/standin (never on a user's PATH, nor next to the CLI,
# whose automation API puts its own folder first on PATH: a test opts in by adding this folder)
STANDIN_SRC := tools/lab/command-standin
command-standin: .engine/standin/pulumi-resource-command

.engine/standin/pulumi-resource-command: $(STANDIN_SRC)/go.mod $(STANDIN_SRC)/go.sum $(wildcard $(STANDIN_SRC)/*.go $(STANDIN_SRC)/*/*.go)
	bash $(STANDIN_SRC)/build.sh

## e2e-engine: the real Pulumi CLI on a local file backend (alone: it competes for the CPU)
e2e-engine: venv engine command-standin
	$(PY) -m pytest -q -s -m engine

## lab-up / lab-down: the end-to-end lab kept running to explore by hand (root)
lab-up: venv
	$(PY) -m tools.lab up

lab-down: venv
	$(PY) -m tools.lab down

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache .engine
