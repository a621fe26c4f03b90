# model-monitoring: every entry point. `make test` and `make up` do their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint serve bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

system-deps:
	scripts/ensure-apt.sh promtool:prometheus prometheus-alertmanager:prometheus-alertmanager amtool:prometheus-alertmanager haproxy:haproxy dockerd:docker.io debootstrap:debootstrap docker-registry:docker-registry

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) system-deps lint
	$(PY) -m pytest

# The fast suite while you work: no live servers, no Docker engine (`make test` stays the whole check).
.PHONY: unit
unit: $(STAMP)
	$(PY) -m pytest -m "not live and not e2e" --ignore=tests/e2e

# The stack the Pulumi program declares (run under mocks), realized on a real Docker engine: dockerd is
# started in the background when none answers, and the base images are built once from Debian packages
# (scripts/e2e-images.sh, cached by tag). Also part of `make test`.
.PHONY: e2e e2e-images
e2e: $(STAMP) system-deps
	$(PY) -m pytest tests/e2e

e2e-images: system-deps
	scripts/docker-engine.sh
	scripts/e2e-images.sh

serve: $(STAMP)
	$(PY) -m server --host 127.0.0.1 --port 8000

# Throughput/p99 vs a bare FastAPI app and vs prometheus-fastapi-instrumentator, plus /metrics render
# time (wrk, a few minutes). Options, e.g. BENCH_ARGS="--rounds 7 --duration 8 --out bench.md".
BENCH_ARGS ?=
bench: $(STAMP)
	scripts/ensure-apt.sh wrk:wrk
	$(PY) -m bench.run $(BENCH_ARGS)

# Watch every alert fire: scripted traffic against a running stack (`make up` first). DEMO_URL is the
# model API, the gateway in front of the replicas (stack output modelServerUrl). The error and latency
# phases need `pulumi config set chaosEnabled true` and the stack's token in MODEL_CHAOS_TOKEN
# (`pulumi stack output chaosToken --show-secrets`).
# Extra options, e.g. DEMO_ARGS="--phases errors,latency --rate 20" (python -m loadgen --help).
DEMO_URL ?= http://127.0.0.1:8000
DEMO_ARGS ?=
.PHONY: demo
demo: $(STAMP)
	$(PY) -m loadgen --scenario demo --url $(DEMO_URL) $(DEMO_ARGS)

# The monitoring stack on this Docker host (needs the Pulumi CLI and Docker; scripts/stack.sh says how to
# install them when missing). State lives in .pulumi/ (PULUMI_BACKEND_URL=file://$(CURDIR)/.pulumi), the
# stack is STACK (default dev, created on first use), and secrets are encrypted with
# PULUMI_CONFIG_PASSPHRASE (default "model-monitoring-local"; export your own before the first `make up`).
# Extra pulumi arguments: PULUMI_ARGS, e.g. make preview PULUMI_ARGS="--refresh".
STACK ?= dev
PULUMI_ARGS ?=
.PHONY: up preview destroy
up preview destroy: $(STAMP)
	STACK=$(STACK) PULUMI_BACKEND_URL=$${PULUMI_BACKEND_URL:-file://$(CURDIR)/.pulumi} scripts/stack.sh $@ $(PULUMI_ARGS)
