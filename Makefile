# The README's two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
# Synapse (the interop peer) lives in its own throwaway venv, never in ours.
SYNAPSE_VENV ?= $(abspath .venv-synapse)
# matrix-commander (a third-party CLI client) too: its pins are not ours.
COMMANDER_VENV ?= $(abspath .venv-commander)
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip

.PHONY: demo test test-deps venv bench bench-node bench-federation bench-ingest-cost bench-city clean

$(VENV)/.stamp-base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-base
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(VENV)/bin/parta demo

test-deps:
	deploy/dev/test-deps.sh $(SYNAPSE_VENV) $(COMMANDER_VENV)

test: $(VENV)/.stamp-test test-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	PARTA_SYNAPSE_PY=$(SYNAPSE_VENV)/bin/python \
	PARTA_MATRIX_COMMANDER=$(COMMANDER_VENV)/bin/matrix-commander \
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.stamp-test
	$(PY) bench/bench_core.py

bench-node: $(VENV)/.stamp-test
	$(PY) bench/bench_node.py

bench-federation: $(VENV)/.stamp-test
	$(PY) bench/bench_federation.py --ingest-bound

bench-ingest-cost: $(VENV)/.stamp-test
	$(PY) bench/bench_ingest_cost.py

bench-city: $(VENV)/.stamp-test
	$(PY) bench/bench_city.py

clean:
	rm -rf $(VENV) .venv-synapse .venv-commander .pytest_cache .hypothesis
