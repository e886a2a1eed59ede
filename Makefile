# Two entry points (README): `make run` and `make test`. Every other target is a step they use;
# each step is idempotent and cached, so a second invocation only does what changed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
MESHCERT := $(VENV)/bin/meshcert
# Debian packages the host needs: Docker engine, debootstrap for node rootfs, jq for the runc
# wrapper, gcc for pause, iptables for dockerd, busybox-static for tiny probe images.
APT_PACKAGES := docker.io debootstrap jq iptables gcc busybox-static
PYTEST_ARGS ?=

.PHONY: run test setup apt venv engine toolchain images lint unit e2e e2e-serial clean

run: setup engine toolchain images
	$(MESHCERT) run conformance --profile quick

test: setup lint engine toolchain images unit e2e

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo ">> installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@echo ">> creating $(VENV) and installing meshcert with its dev tools"
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

engine: venv
	$(MESHCERT) engine up

toolchain: venv
	$(MESHCERT) toolchain build

images: toolchain
	$(MESHCERT) images build

lint: venv
	$(VENV)/bin/ruff check src tests conformance chaos loadgen benchmarks
	$(VENV)/bin/ruff format --check src tests conformance chaos loadgen benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: venv
	$(VENV)/bin/pytest tests -m 'not e2e' $(PYTEST_ARGS)

# The e2e tests run in two lanes at once, each on its own kind cluster: most of their time is spent
# waiting (pods starting, convergence deadlines, steady load), not computing, so two lanes fit the
# 20-minute warm CI budget on 2 cores. core: foundation, S/E/P/R conformance, kwok. mesh: the
# reference mesh suite and the chaos suite. Each lane's output is prefixed with its name.
E2E_CORE := tests conformance --ignore=conformance/mesh
E2E_MESH := conformance/mesh chaos

# Tests marked `exclusive` (a client paced on a schedule) run last and alone, on their own cluster.
e2e: venv
	@echo ">> e2e in two lanes: [core] $(E2E_CORE) | [mesh] $(E2E_MESH)"
	@( $(VENV)/bin/pytest $(E2E_CORE) -m 'e2e and not exclusive' $(PYTEST_ARGS) 2>&1 | sed -u 's/^/[core] /'; exit $${PIPESTATUS[0]} ) & core=$$!; \
	( $(VENV)/bin/pytest $(E2E_MESH) -m 'e2e and not exclusive' $(PYTEST_ARGS) 2>&1 | sed -u 's/^/[mesh] /'; exit $${PIPESTATUS[0]} ) & mesh=$$!; \
	rc=0; wait $$core || rc=1; wait $$mesh || rc=$$((rc + 2)); \
	case $$rc in 0) echo ">> e2e: both lanes passed";; 1) echo ">> e2e: core lane failed";; \
	  2) echo ">> e2e: mesh lane failed";; *) echo ">> e2e: both lanes failed";; esac; \
	echo ">> e2e: tests that need the machine to themselves"; \
	$(VENV)/bin/pytest tests conformance chaos -m 'e2e and exclusive' $(PYTEST_ARGS) || rc=$$((rc + 4)); exit $$rc

# One lane after the other (slower; for a machine too small for two clusters at once).
e2e-serial: venv
	$(VENV)/bin/pytest tests conformance chaos -m e2e $(PYTEST_ARGS)

clean:
	-$(MESHCERT) gc --all
	rm -rf reports/allure-results reports/junit
