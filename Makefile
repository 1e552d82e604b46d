# onprem.torchrun: developer and CI entry points.
#   make demo            the main job on a 2-node sandbox cluster
#   make test            the whole test suite (what CI runs)
# Both install what they need: Debian packages with apt, Python tools into .venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
NODES ?= 2
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1

# Debian packages the sandbox and the tests use on the host.
APT_PACKAGES := debootstrap systemd-container iproute2 openssh-client rsync shellcheck apt-cacher-ng libfuse2 dpkg-dev binutils gnupg
# Molecule scenarios in the default suite, in order (sandbox, the wiring alone, runs in test-slow:
# every scenario here boots and uses the same wiring). The firewall managers' scenarios (about 4.5
# minutes each on CI's 2 cores) run in test-slow, which keeps make test under 30 minutes.
SCENARIOS ?= train
SLOW_SCENARIOS := firewalld ufw

SANDBOX := $(PYTHON) sandbox/sandbox.py
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
SANITY_ROOT ?= /tmp/onprem-torchrun-sanity
# The pip version ansible-test (ansible-core 2.19) bootstraps into its test venvs, and where it looks.
PIP_BOOTSTRAP := 24.2
PIP_BOOTSTRAP_CACHE := $(HOME)/.ansible/test/cache
# The site's pip index (pip's own configuration), handed to the pytorch role by gpu-check.
PIP_INDEX ?= $(shell pip config get global.index-url 2>/dev/null)
COLLECTION_COPY := $(SANITY_ROOT)/ansible_collections/onprem/torchrun

.PHONY: help deps venv demo sandbox sandbox-down sandbox-status lint sanity unit integration molecule test test-slow build bench readme gpu-check test-runbooks clean

help:  ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps:  ## Install the Debian packages the sandbox needs (apt; the system's apt-cacher-ng service, where one starts, on 127.0.0.1 only)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make: installing $$missing"; \
	  echo "apt-cacher-ng apt-cacher-ng/bindaddress string 127.0.0.1" | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed  ## Create the Python toolchain in .venv

$(VENV)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $@

sandbox: deps  ## Boot the sandbox cluster (NODES=2 nodes plus the outsider; NVIDIA_REPO=1 serves the NVIDIA-shaped repository and names it in the inventory)
	$(SANDBOX) up --nodes "$(NODES)" $(if $(NVIDIA_REPO),--nvidia-repo)

demo: deps venv  ## The main job: playbooks/train.yml on a NODES=2 sandbox cluster; RUNTIME=podman or docker trains inside the sandbox's image
	$(if $(filter-out podman docker,$(RUNTIME)),$(error RUNTIME=$(RUNTIME): the sandbox's image runs with RUNTIME=podman or RUNTIME=docker))
	$(SANDBOX) wheelhouse -r sandbox/wheelhouse.txt
	$(if $(RUNTIME),$(SANDBOX) container-image --runtime $(RUNTIME) --vars build/sandbox-$(RUNTIME).json)
	$(SANDBOX) up --nodes "$(NODES)"
	ansible-playbook playbooks/train.yml -i inventories/sandbox $(if $(RUNTIME),-e @build/sandbox-$(RUNTIME).json)

sandbox-down:  ## Stop the sandbox; leaves no node, mount, link or proxy
	$(SANDBOX) down

sandbox-status:  ## Show the sandbox nodes
	$(SANDBOX) status

lint: venv  ## ansible-lint (production profile), antsibull-docs lint of every plugin's and role's documentation, antsibull-changelog lint of the changelog and its fragments
	ansible-lint
	antsibull-changelog lint
	cd collections/ansible_collections/onprem/torchrun && antsibull-docs lint-collection-docs --plugin-docs .

sanity: build  ## ansible-test sanity on the collection as it ships (the built tarball)
	rm -rf $(SANITY_ROOT)
	mkdir -p $(COLLECTION_COPY) $(PIP_BOOTSTRAP_CACHE)
	tar -xzf build/onprem-torchrun-$(VERSION).tar.gz -C $(COLLECTION_COPY)
	@# ansible-test fetches a pip bootstrap script from a server out of reach here; use our
	@# stand-in with a pip wheel from PyPI (tests/sanity/get_pip_shim.py says how).
	cp tests/sanity/get_pip_shim.py $(PIP_BOOTSTRAP_CACHE)/get_pip_$(subst .,_,$(PIP_BOOTSTRAP)).py
	test -f $(PIP_BOOTSTRAP_CACHE)/pip-$(PIP_BOOTSTRAP)-py3-none-any.whl || \
	  $(BIN)/python -m pip download --quiet --no-deps --dest $(PIP_BOOTSTRAP_CACHE) pip==$(PIP_BOOTSTRAP)
	cd $(COLLECTION_COPY) && ansible-test sanity --python 3.11 --color no --requirements

unit: venv  ## Unit tests of plugins and tools (pytest, one worker per core)
	pytest -q -n auto tests/unit

integration: venv deps  ## Sandbox tests on real nodes (root; boots nodes); the slow ones are in test-slow
	pytest -q --durations=15 -m "not slow" tests/integration

molecule: venv deps  ## Molecule scenarios on the sandbox ($(SCENARIOS))
	@mkdir -p build
	@# A failing verifier's summary is printed again last, where CI's tail of the output shows it.
	for s in $(SCENARIOS); do \
	  PYTEST_ADDOPTS="-rfE --tb=short" molecule test -s $$s 2>&1 | tee build/molecule-$$s.log \
	    || { sed -n '/= \(FAILURES\|ERRORS\) =/,/ in [0-9.]*s/p' build/molecule-$$s.log | tail -80; exit 1; }; \
	done

test-slow: venv deps  ## Slow scenarios, not in `make test`: crash and c10d recovery with resume, a power cut, relaunch edge cases, a join timeout and a hung rank named, a planted connectivity fault (~11 min), the firewalld and ufw scenarios (~13 min), a node's last job removed, the health check on 3 nodes (a healthy run, a throttled node named, a failing check that launches nothing), a look-alike sshd, a stalled mirror, the strict firewall's allow list and way back, the preflight cases refused on the controller, the NVIDIA driver's upgrade and reboot, the sandbox's own recovery and resizing, the job in its image with podman (~18 min) and with docker (~9 min), the sandbox wiring scenario, the CUDA toolkit from Debian non-free (~2.5 GB)
	pytest -q -m slow tests/integration
	$(MAKE) molecule SCENARIOS="$(SLOW_SCENARIOS)"
	molecule test -s sandbox
	molecule test -s cuda_toolkit

gpu-check: venv  ## On a GPU host (root): GPU facts, driver, torch.cuda, NCCL all_reduce; PYTORCH_ENV=<path> checks a preinstalled env as is
	ansible-playbook playbooks/gpu_check.yml $(if $(PYTORCH_ENV),-e pytorch_venv_external=true -e torchrun_venv=$(PYTORCH_ENV),$(if $(PIP_INDEX),-e pytorch_index_url=$(PIP_INDEX)))

bench: venv deps $(VENV)/.bench-installed  ## Benchmarks (bench/, ~40 min, boots up to 16 nodes): docs/benchmarks/results.md and .png; BENCH_ARGS="--only scale --sizes 2,4"
	$(SANDBOX) wheelhouse -r sandbox/wheelhouse.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

$(VENV)/.bench-installed: $(VENV)/.installed requirements/bench.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	touch $@

test-runbooks: venv deps  ## Run every command of docs/runbooks against the sandbox (about 10 minutes; not in `make test`)
	pytest -q tests/runbooks

readme: venv  ## Regenerate the README's common-mistakes table (from the preflight catalogue), its plugin list (from the plugins' DOCUMENTATION) and the roles' variable tables (from their specs)
	$(PYTHON) tools/catalogue.py
	$(PYTHON) tools/role_docs.py
	$(PYTHON) tools/plugin_docs.py

build: venv  ## Build the collection tarball into build/
	mkdir -p build
	ansible-galaxy collection build --force --output-path build .

test: deps venv lint sanity unit build integration molecule  ## The whole suite (CI runs this)
	@echo "make test: all checks passed"

clean: sandbox-down  ## Stop the sandbox and remove build outputs (keeps .venv and the image cache)
	rm -rf build
