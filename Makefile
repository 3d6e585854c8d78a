# safevine: every target installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
DEMO_DB ?= sqlite:///demo.db

.PHONY: install run test lint screenshots bench bench-quick bench-tools messages clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/pybabel compile -d src/safevine/locales -D messages >/dev/null
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	test -f demo.key || $(PY) -c 'import secrets; print(secrets.token_urlsafe(48))' > demo.key
	SAFEVINE_DATABASE_URL=$${SAFEVINE_DATABASE_URL:-$(DEMO_DB)} SAFEVINE_DEMO=true \
	SAFEVINE_SECRET_KEY_FILE=demo.key \
	$(VENV)/bin/safevine demo --serve --port $${PORT:-8000}

# Tests run on a worker per core (at most 4): each makes its own databases and servers.
test: install
	$(PY) -m pytest -n auto --maxprocesses 4

# The README's screenshots, taken again in Chromium (tests otherwise write theirs to a
# temporary folder, so a test run leaves the checkout clean).
screenshots: install
	SAFEVINE_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser -k screenshots

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Benchmarks are not tests: CI never runs them. Results land in bench/results/;
# a full run also rewrites the figures in BENCHMARKS.md.
bench: bench-tools
	$(PY) -m bench.run --scale full

bench-quick: bench-tools
	$(PY) -m bench.run --scale quick

bench-tools: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null 2>&1 || { echo "== installing wrk from Debian's packages"; \
	  $$([ "$$(id -u)" = 0 ] || echo sudo) sh -c 'apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null'; }

# After changing messages in code or templates: refresh the catalog, then translate.
messages: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		-o src/safevine/locales/messages.pot .
	$(VENV)/bin/pybabel update -i src/safevine/locales/messages.pot \
		-d src/safevine/locales -D messages --width 100

clean:
	rm -rf $(VENV) demo.db demo.db-* demo.db.priority demo.db.turn demo.db.dispatch demo.key .pytest_cache .mypy_cache .ruff_cache
