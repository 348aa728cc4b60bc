# rollout: developer and CI entry points. `make test` is what CI runs (see .ci/run).
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Molecule and ansible-runner call ansible-* tools by name: the venv must be first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/images/containers.conf
export ANSIBLE_LOCAL_TEMP := $(CURDIR)/.rollout/ansible-tmp
export ANSIBLE_HOME := $(CURDIR)/.rollout/ansible-home
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
MOLECULE_SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help deps venv lint unit integration molecule images e2e crash-test bench bench-quick test lab-demo clean

help:
	@echo "make lab-demo     bring up the local lab and roll it out (rollout lab up + rollout apply --region lab)"
	@echo "make test         everything CI runs: lint, unit, integration, molecule, lab e2e subset, bench smoke"
	@echo "make lint | unit | integration | molecule | e2e (lab, 3 kills) | crash-test (20 kills) | bench | bench-quick"

$(BIN)/rollout: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,collections]'
	@touch $@

venv: $(BIN)/rollout

# Debian packages (podman, debootstrap, ...): installs only what is missing (needs root then).
deps:
	@bash scripts/install-system-deps.sh

lint: venv
	$(BIN)/ruff check rollout tests bench
	$(BIN)/mypy rollout/model rollout/planner
	$(BIN)/lint-imports
	@if [ -d roles ]; then $(BIN)/yamllint -s roles playbooks molecule inventories; fi
	@if [ -d roles ]; then $(BIN)/ansible-lint --profile production roles playbooks; fi

unit: venv
	$(PYTEST) -q tests/unit

images: venv
	bash images/build-node-image.sh >/dev/null
	@for s in images/build-*-image.sh; do [ "$$s" = images/build-node-image.sh ] || bash $$s >/dev/null; done
	@if [ -x images/build-standin-repo.sh ]; then bash images/build-standin-repo.sh .rollout/standin-repo >/dev/null; fi

integration: venv images
	$(PYTEST) -q -m "integration and not lab and not slow" tests/integration

molecule: venv images
	@set -e; for s in $(MOLECULE_SCENARIOS); do \
	  echo "== molecule test -s $$s"; start=$$(date +%s); \
	  $(BIN)/molecule test -s $$s; echo "== $$s: $$(( $$(date +%s) - start )) s"; done

CRASH_RUNS ?= 3
# The lab suite: apply, re-image, then CRASH_RUNS random SIGKILLs each resumed (one lab session).
e2e: venv images
	$(PYTEST) -q -m lab tests/integration tests/e2e --crash-runs=$(CRASH_RUNS)

# The full kill-and-resume suite (20 random kills on the lab); results in .rollout/crash-test-results.json.
crash-test:
	$(MAKE) e2e CRASH_RUNS=20

bench-quick: venv
	@set -e; for b in bench/*.py; do case $$b in */gen_region.py|*/__init__.py|*/report.py) continue;; esac; \
	  echo "== $$b --quick"; $(BIN)/python $$b --quick; done

bench: venv
	@set -e; for b in bench/*.py; do case $$b in */gen_region.py|*/__init__.py|*/report.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b; done

test: deps lint unit integration molecule e2e bench-quick

lab-demo: deps venv images
	$(BIN)/rollout lab up
	$(BIN)/rollout plan --region lab
	$(BIN)/rollout apply --region lab --yes
	$(BIN)/rollout status --region lab

clean:
	-$(BIN)/rollout lab down
	rm -rf .rollout
