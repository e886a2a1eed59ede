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

# The e2e tests run in three lanes at once, each its own pytest session on its own kind cluster:
# most of their time is waiting (pods starting, convergence deadlines, steady load at a fixed
# rate), not computing. core: foundation, S/E/P/R conformance, kwok. mesh-a: the chaos suite and
# the mesh modules that hold faults or load for long (each installs the reference mesh on its
# own cluster). mesh-b: the rest of the mesh suite. Each lane's output is prefixed with its name;
# the lanes are balanced by the measured time of their modules.
MESH_A_MODULES := test_chaos_mesh_m8_reset test_m10_outlier test_m14_control_plane_down test_m15_authz \
  test_m11_mirroring test_m9_faults
E2E_CORE := tests conformance --ignore=conformance/mesh
E2E_MESH_A := chaos $(foreach m,$(MESH_A_MODULES),conformance/mesh/$(m).py)
E2E_MESH_B := conformance/mesh $(foreach m,$(MESH_A_MODULES),--ignore=conformance/mesh/$(m).py)
LANES := core mesh-a mesh-b
lane_args = $(if $(filter core,$(1)),$(E2E_CORE),$(if $(filter mesh-a,$(1)),$(E2E_MESH_A),$(E2E_MESH_B)))

# Tests marked `exclusive` (a client paced on a schedule) run last in the core lane and alone:
# each other lane writes a done file when it ends, pass or fail (pytest itself, --lane-done; the
# recipe touches it again for a lane that died first), and the core lane's first exclusive test
# waits for all of them (meshcert.lanes), so they run alone on a cluster that is already up.
LANES_DONE := reports/.lanes
OTHER_LANES := $(filter-out core,$(LANES))
lane_marks = $(if $(filter core,$(1)),e2e,e2e and not exclusive)
lane_extra = $(if $(filter core,$(1)),--exclusive-after=$(subst $(eval) ,$(comma),$(foreach l,$(OTHER_LANES),$(LANES_DONE)/$(l))))
comma := ,
# A lane that runs longer than this has hung (each took under 20 minutes in CI): it is stopped
# with SIGTERM (SIGKILL a minute later) so the run fails naming it, well inside CI's 90 minutes.
# Its cluster stays; `meshcert gc` removes it.
LANE_TIMEOUT := 45m

# Each lane: its output prefixed with its name, and one line when it ends (exit status, seconds).
# `|| rc=$$?` keeps a failing lane's pipeline from ending the subshell under `set -e` before it
# touches its done file and reports.
e2e: venv
	@rm -rf $(LANES_DONE) && mkdir -p $(LANES_DONE)
	@echo ">> e2e in $(words $(LANES)) lanes:$(foreach l,$(LANES), [$(l)] $(call lane_args,$(l)) |) then, in [core], the exclusive tests alone"
	@pids=""; $(foreach l,$(LANES),( rc=0; start=$$SECONDS; \
	    timeout --kill-after=60 $(LANE_TIMEOUT) $(VENV)/bin/pytest $(call lane_args,$(l)) -m '$(call lane_marks,$(l))' \
	    --lane-done=$(LANES_DONE)/$(l) $(call lane_extra,$(l)) $(PYTEST_ARGS) 2>&1 | sed -u 's/^/[$(l)] /' || rc=$$?; \
	    touch $(LANES_DONE)/$(l); \
	    echo ">> [$(l)] lane ended at $$(date +%T): exit $$rc after $$((SECONDS - start)) s$$([ $$rc = 124 ] && echo ', stopped by the $(LANE_TIMEOUT) lane timeout')"; \
	    exit $$rc ) & pids="$$pids $(l):$$!";) \
	failed=""; for p in $$pids; do wait $${p#*:} || failed="$$failed $${p%%:*}"; done; \
	if [ -z "$$failed" ]; then echo ">> e2e: every lane passed"; else echo ">> e2e: failed lane(s):$$failed"; exit 1; fi

# One lane after the other (slower; for a machine too small for two clusters at once).
e2e-serial: venv
	$(VENV)/bin/pytest tests conformance chaos -m e2e $(PYTEST_ARGS)

clean:
	-$(MESHCERT) gc --all
	rm -rf reports/allure-results reports/junit
