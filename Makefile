# Layanify WhatsApp — the two commands: `make run` and `make test`. Everything else they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
VENDOR := src/layanify/web/static/vendor
WEB_ASSETS := $(VENDOR)/.installed

.PHONY: messages install browser run test lint typecheck test-sqlite test-postgresql bench bench-quick bench-send bench-simulator lock clean

$(INSTALLED): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## The web UI's front-end libraries, pinned in package.json, from the npm registry into the package's
## static directory (not committed).
$(WEB_ASSETS): package.json
	npm install --silent --no-package-lock --no-save
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx.min.js
	touch $@

install: $(INSTALLED) $(WEB_ASSETS)

## Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no browser download), and
## an emoji font so the screenshots show the UI's icons.
browser:
	test -x /usr/bin/chromium && dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji)

## Run the product on the embedded default (SQLite under ./data, in-process workers): against Meta when
## WHATSAPP_* credentials are configured (.env.local), otherwise the demo with a local WhatsApp simulator.
run: install
	$(BIN)/layanify up

## Every check: lint, types, and the whole suite on SQLite and on PostgreSQL.
test: install browser lint typecheck test-sqlite test-postgresql

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy src

test-sqlite: install
	LAYANIFY_TEST_DATABASE=sqlite $(BIN)/pytest

test-postgresql: install
	LAYANIFY_TEST_DATABASE=postgresql $(BIN)/pytest

## Webhook ingest benchmark (installs Debian's wrk as the load generator when it is missing).
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/webhook_ingest.py

bench-quick: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/webhook_ingest.py --quick

## Sending benchmark against the simulator (PostgreSQL and SQLite; needs Redis for the multi-process phase).
bench-send: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/send_throughput.py

## The simulator's own capacity (it must not be the bottleneck of the other benchmarks).
bench-simulator: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/simulator_throughput.py

## Re-pin dependencies after editing pyproject.toml (no registry addresses in the lock files).
lock: install
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
		--output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
		--extra dev --output-file requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## Re-extract the UI's strings and merge them into the catalogs (then translate the new ones in the .po files).
messages: install
	mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 --no-location --sort-output -o build/messages.pot .
	$(BIN)/pybabel update --width 110 --no-fuzzy-matching --ignore-obsolete -i build/messages.pot -d src/layanify/web/locales -l id
