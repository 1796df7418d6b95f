# taskmesh: two commands from a fresh clone — `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
# `make bench`'s httpbin row runs from its own venv: httpbin >= 0.10.2 pins greenlet < 3 on
# Python < 3.12 (so gevent stays at 23.x, and gunicorn >= 24's gevent worker refuses
# gevent < 24.10), while playwright in the test venv needs greenlet >= 3.
HTTPBIN_VENV := .venv-httpbin
HTTPBIN_STAMP := $(HTTPBIN_VENV)/.installed
HTTPBIN_REQUIREMENTS := 'httpbin[mainapp]>=0.10.2' 'gunicorn>=22,<24' 'gevent>=23.7'
# Debian's browser for the page tests (tests/page/conftest.py), and the busy loop of test-busy.
CHROMIUM := /usr/bin/chromium
STRESS_NG := /usr/bin/stress-ng
# the load generator of make bench, and of the bench tests (tests/bench/test_stores.py)
WRK := /usr/bin/wrk
VALGRIND := /usr/bin/valgrind
# Debian's PostgreSQL server for the store tests, make bench and mesh up k8s/variants/postgres
# (mesh/pgserver.py finds the newest /usr/lib/postgresql/*/bin).
POSTGRES ?= $(or $(lastword $(sort $(wildcard /usr/lib/postgresql/*/bin/postgres))),/usr/lib/postgresql/15/bin/postgres)

.PHONY: demo-canary demo-circuit-breaker demo-outlier demo-mirror demo-rollout demo-secure-gateway soak install run test test-unit test-integration test-busy chromium stress-ng postgresql wrk valgrind lint check bench clean minikube minikube-down compose-config gateway-certs

# (Re)install only when the project's dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The local mesh: every workload of k8s/ on loopback behind real Envoy.
run: $(STAMP)
	$(BIN)/mesh up k8s

## Every test: lint, unit tests, real-process tests, manifest checks.
test: chromium postgresql wrk valgrind $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-unit: postgresql $(STAMP)
	$(BIN)/python -m pytest -m 'not integration'

test-integration: chromium postgresql wrk valgrind $(STAMP)
	$(BIN)/python -m pytest -m integration

## The whole suite while every core is kept busy by a bounded stress-ng, as on a
## shared CI machine: timing-sensitive tests fail here first.
test-busy: chromium stress-ng postgresql wrk valgrind $(STAMP)
	$(BIN)/ruff check .
	bash scripts/while-busy.sh $(BIN)/python -m pytest

## Debian packages the tests need, checked before anything runs: installed when
## run as root with apt-get (as on CI), else one line says what to install.
chromium:
	@bash scripts/ensure-apt-package.sh $(CHROMIUM) chromium "for the page tests, tests/page"

postgresql:
	@bash scripts/ensure-apt-package.sh $(POSTGRES) postgresql "for the PostgreSQL store tests, tests/backend"

stress-ng:
	@bash scripts/ensure-apt-package.sh $(STRESS_NG) stress-ng "for make test-busy"

wrk:
	@bash scripts/ensure-apt-package.sh $(WRK) wrk "for make bench and the bench tests, tests/bench"

valgrind:
	@bash scripts/ensure-apt-package.sh $(VALGRIND) valgrind "for bench/envoy_instructions.py and its test, tests/bench"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(HTTPBIN_VENV) .pytest_cache .ruff_cache build dist *.egg-info .taskmesh

## minikube + Istio, on your own machine (cannot run here: no cluster).
minikube:
	bash scripts/minikube.sh

minikube-down:
	bash scripts/minikube-down.sh

## compose/envoy.yaml: the gateway config of docker-compose.yml, regenerated from k8s/ (a test checks it is current).
# New demo certificates for k8s/variants/secure-gateway (Istio's secure-gateway task):
# a CA, taskmesh.example.com's pair and a client pair, valid ten years.
gateway-certs: $(STAMP)
	$(BIN)/python -m mesh.gateway_certs k8s/variants/secure-gateway/credential

compose-config: $(STAMP)
	$(BIN)/mesh envoy-config k8s --target compose > compose/envoy.yaml.tmp
	mv compose/envoy.yaml.tmp compose/envoy.yaml

## Demos: each starts a throwaway local mesh on free ports, runs one of Istio's
## traffic tasks, prints the evidence and stops everything.
demo-canary: $(STAMP)
	$(BIN)/mesh demo canary

demo-circuit-breaker: $(STAMP)
	$(BIN)/mesh demo circuit-breaker

demo-outlier: $(STAMP)
	$(BIN)/mesh demo outlier

demo-mirror: $(STAMP)
	$(BIN)/mesh demo mirror

demo-rollout: $(STAMP)
	$(BIN)/mesh demo rollout

demo-secure-gateway: $(STAMP)
	$(BIN)/mesh demo secure-gateway

## Benchmarks: one table from one run (wrk at 32 connections, median of 3 rounds).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

# httpbin as its container image serves it (gunicorn, one gevent worker), in HTTPBIN_VENV so
# that `make bench` never changes the test venv.
$(HTTPBIN_STAMP): Makefile
	test -x $(HTTPBIN_VENV)/bin/python || $(PY) -m venv $(HTTPBIN_VENV)
	$(HTTPBIN_VENV)/bin/python -m pip install -q --upgrade pip
	$(HTTPBIN_VENV)/bin/python -m pip install -q $(HTTPBIN_REQUIREMENTS)
	touch $(HTTPBIN_STAMP)

bench: postgresql wrk $(BENCH_STAMP) $(HTTPBIN_STAMP)
	$(BIN)/python bench/run.py

## A bounded soak: steady load with faults flipping; memory must stay flat.
soak: $(STAMP)
	$(BIN)/python bench/soak.py
