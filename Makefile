# `make up` runs the platform; `make test` runs every check and test. Both bootstrap
# everything they need (a Python 3.12 virtualenv, the project, the built console) and reuse
# it on the next run. DATABASE_URL is used when set; otherwise an embedded PostgreSQL starts.

PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FRONTEND_STAMP := frontend/dist/index.html
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/package-lock.json frontend/vite.config.ts frontend/tsconfig*.json -type f 2>/dev/null)

.PHONY: up test bootstrap lint typecheck pytest frontend-test e2e-deps clean

up: bootstrap
	$(BIN)/fireflow up

test: bootstrap e2e-deps lint typecheck frontend-test pytest

bootstrap: $(STAMP) $(FRONTEND_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"FireFlow needs Python 3.12+, found {sys.version.split()[0]} at {sys.executable}: install 3.12 or set PYTHON=/path/to/python3.12"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

$(FRONTEND_STAMP): frontend/node_modules/.package-lock.json $(FRONTEND_SOURCES)
	cd frontend && npm run build

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	DATABASE_URL=$${DATABASE_URL:-postgresql://unused/typecheck} $(BIN)/mypy platform tenants engine billing
	cd frontend && npm run typecheck && npm run lint

frontend-test:
	cd frontend && npm run test

pytest:
	$(BIN)/fireflow with-db -- $(BIN)/pytest

# Browser tests drive Debian's Chromium; install it when missing (never `playwright install`).
e2e-deps:
	@test -x /usr/bin/chromium || (echo "installing Debian chromium for browser tests" && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "could not install chromium: browser tests will fail")

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist var/static
