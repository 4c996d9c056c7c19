# The two commands the README leads with. Both install what they need on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test coverage install lint format clean

$(STAMP): pyproject.toml clients/pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh
	touch $(STAMP)

install: $(STAMP)

## make run: the site with demo content on http://127.0.0.1:8000 and supervised Celery workers (Ctrl-C stops all)
run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py demo --if-empty
	DEBUG=$${DEBUG:-true} $(PY) manage.py runlocal

## make test: the whole suite (SQLite and the embedded broker unless DATABASE_URL / CELERY_BROKER_URL say otherwise),
## two pytest workers per core, at most four (PYTEST_WORKERS=0 runs it in one process): much of the suite waits on
## subprocesses, Chromium and the database, so two workers per core finish sooner (on 2 cores: 469 s against 688 s);
## the tests' Redis databases are laid out for up to four workers. --maxschedchunk 1 hands out tests one at a time,
## so the longest (tests/conftest.py's _LONGEST_FIRST) start on different workers instead of queuing on one
##
## COVERAGE=1 (`make coverage`; .ci/run runs it after the timed suite) also measures line and branch coverage of our code,
## in the pytest workers and in the Python processes the tests start (Celery workers, manage.py, runlocal:
## [tool.coverage.run] patch = subprocess), prints the table of files not fully covered, then
## scripts/coverage_floor.py prints the totals and fails below the floor ([tool.coverage.report] fail_under, which only
## rises). Not in `make test` itself: the tracer costs the suite 35-40% more CPU (docs/benchmarks.md). pytest-cov's own
## fail-under check is off (--cov-fail-under=0) so that the script, which prints lines and branches apart and
## holds the ratchet, is the one gate.
##
## PYTHONDONTWRITEBYTECODE is emptied for the suite (an empty value is Python's "unset"): with it set, as on this
## project's machines, every one of the hundred-odd Python processes a run starts (four workers, Celery workers,
## manage.py) compiled our sources again, and each worker assertion-rewrote every test module again: 15 CPU-s to
## collect the suite per worker against 8 with the bytecode kept (docs/benchmarks.md).
PYTEST_WORKERS ?= $(shell n=$$(( $$(nproc) * 2 )); echo $$(( n > 4 ? 4 : n )))
COVERAGE ?=
COVERAGE_ARGS := $(if $(filter 1,$(COVERAGE)),--cov --cov-report=term --cov-fail-under=0)
test: install
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1 $(COVERAGE_ARGS) $(PYTEST_ARGS)
	$(if $(COVERAGE_ARGS),$(PY) scripts/coverage_floor.py)

## make coverage: make test with COVERAGE=1
coverage:
	$(MAKE) test COVERAGE=1

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
