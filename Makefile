# The two commands the README leads with. Both install what they need on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint format clean

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
PYTEST_WORKERS ?= $(shell n=$$(( $$(nproc) * 2 )); echo $$(( n > 4 ? 4 : n )))
test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
