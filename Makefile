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

.PHONY: run test setup apt venv engine toolchain images lint unit e2e clean

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

e2e: venv
	$(VENV)/bin/pytest tests conformance chaos -m e2e $(PYTEST_ARGS)

clean:
	-$(MESHCERT) gc --all
	rm -rf reports/allure-results reports/junit
