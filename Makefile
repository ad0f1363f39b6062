# The README's commands. `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install claimsieve with its dev tools

run: $(STAMP) ## serve on 127.0.0.1:8000 with the built-in corpus (no auth, loopback only)
	$(VENV)/bin/claimsieve serve --no-auth

test: $(STAMP) ## run the test suite
	$(PY) -m pytest

test-fast: $(STAMP) ## the tests without real models, crash trials or load (under a minute)
	$(PY) -m pytest -m "not models and not slow"

lint: $(STAMP) ## ruff, mypy and the import layers (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy service claims retrieval
	$(VENV)/bin/lint-imports

bench: $(STAMP) ## latency of a 150-word check on the built-in corpus (writes bench/results/)
	$(PY) bench/latency.py
