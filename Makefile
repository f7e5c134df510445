# Hookline: `make run` starts everything on this machine, `make test` runs the suite.
# Both create the virtualenv and install what is missing on first use.

PYTHON ?= $(shell command -v /usr/bin/python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup run test lint bench clean screenshots

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create the virtualenv and install pinned dependencies

run: $(STAMP) ## start NATS, SecantusDB and the four services; Ctrl-C stops all
	$(BIN)/python -m libs.local.launcher

# The console's browser tests drive Debian's Chromium through its ChromeDriver.
BROWSER := /usr/bin/chromium /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(BROWSER):
	@echo "installing Debian's chromium and chromium-driver (the console's browser tests)"
	$(SUDO) apt-get install -y -qq chromium chromium-driver || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver)

test: $(STAMP) $(BROWSER) ## the whole suite: unit, integration (real servers), end-to-end, browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

screenshots: $(STAMP) $(BROWSER) ## the console's pictures in docs/console/ (README)
	HOOKLINE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_console_screenshots.py

lint: $(STAMP) ## ruff, mypy and the layer contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) ## ingest req/s and p99 vs a bare aiohttp handler, end-to-end events/s
	$(BIN)/python -m bench

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var
