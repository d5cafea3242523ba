# Everything a contributor or CI runs goes through these targets; `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
HELM3_VERSION ?= 3.18.0
HELM4_VERSION ?= 4.1.4
HELM3 ?= $(TOOLS)/helm-$(HELM3_VERSION)/helm
HELM4 ?= $(TOOLS)/helm-$(HELM4_VERSION)/helm
PYTEST_ARGS ?=
BENCH_ARGS ?=

export HELM3 HELM4

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_%-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements-dev.txt images/jobworker/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -e 'images/jobworker[redis,amqp]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the virtual environment with the worker and the test tools

$(HELM3) $(HELM4): | $(VENV)/.installed
	$(VENV)/bin/python scripts/get-helm.py $(TOOLS)

.PHONY: helm
helm: $(HELM3) $(HELM4) ## install the pinned Helm 3 and Helm 4 binaries (sha256-checked)

.PHONY: system-deps
system-deps: ## install redis-server, rabbitmq-server and amqp-tools when missing (Debian, root)
	scripts/install-system-deps

.PHONY: lint
lint: venv ## ruff over the worker, tests and benchmarks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: test
test: system-deps venv helm lint ## run every test (sets up what it needs first)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: bench
bench: system-deps venv ## run the benchmarks and print their numbers
	$(VENV)/bin/python bench/fine_queue.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/coarse_queue.py $(BENCH_ARGS)

.PHONY: clean
clean: ## remove the virtual environment, tools and build output
	rm -rf $(VENV) $(TOOLS) dist .pytest_cache .ruff_cache
