# Needs only python3 (>= 3.11) and make: every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
IMAGES ?=
DIST_VENV := build/dist-venv

NOTEBOOKS_STAMP := $(VENV)/.installed-notebooks

.PHONY: help install demo test lint format bench cassettes notebooks notebooks-execute dist clean

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its test and dev tools

demo: $(STAMP) ## Describe the sample images on the embedded local server (offline; IMAGES=folder for yours)
	$(BIN)/afarensis-vision demo $(IMAGES)

test: $(STAMP) ## Run the test suite (offline)
	$(BIN)/python -m pytest -q

cassettes: $(STAMP) ## Re-record cassettes/ (local server; a real endpoint if AFARENSIS_API_KEY and AFARENSIS_BASE_URL are set)
	rm -rf cassettes/test_standard_cassettes cassettes/test_cassettes_client \
		cassettes/test_cassettes_documents
	AFARENSIS_RECORD_MODE=all $(BIN)/python -m pytest -q -p no:randomly \
		tests/integration_tests/test_standard_cassettes.py tests/integration_tests/test_cassettes_client.py \
		tests/integration_tests/test_cassettes_documents.py

$(NOTEBOOKS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,dev,notebooks]"
	touch $(NOTEBOOKS_STAMP)

notebooks: $(NOTEBOOKS_STAMP) ## Open the notebooks in JupyterLab, from the venv (offline: each starts a local server)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

notebooks-execute: $(STAMP) ## Re-execute the notebooks in place (stored outputs come from this)
	$(BIN)/python notebooks/_execute.py

lint: $(STAMP) ## ruff (lint + format check) and mypy strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## Format and fix imports
	$(BIN)/ruff format .
	$(BIN)/ruff check --select I --fix .

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## Run the benchmarks against the alternatives (not part of make test)
	$(BIN)/python benchmarks/run_all.py

dist: $(STAMP) ## Build the wheel and sdist into dist/, twine-check them, try the wheel in a fresh venv
	rm -rf dist $(DIST_VENV)
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install --quiet "$$(ls dist/*.whl)[server]"
	cd $(DIST_VENV) && bin/afarensis-vision --version && bin/afarensis-vision demo > /dev/null
	@echo "dist/: $$(ls dist | tr '\n' ' ')- installed in a fresh venv, demo ran from outside the checkout"

clean: ## Remove .venv, build outputs and caches
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
