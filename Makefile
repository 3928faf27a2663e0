# Two commands: `make run` starts the embedded server, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres lint superuser bench services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/python manage.py serve

superuser: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createsuperuser

services:
	scripts/ensure-services.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy conference_site audit rooms recording webhooks ops loadtest console

# The unit and consumer tests run on SQLite, then every test that touches
# the database or starts servers (integration tests with real daphne
# processes included) runs on PostgreSQL and Redis. Two workers, a test
# module each at a time (modules share their fixtures).
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile
test: lint services
	$(PYTEST) -m "not integration"
	DATABASE_URL=$(TEST_POSTGRES_URL) $(PYTEST) --backend-dependent-only

bench: $(VENV)/.dev services
	$(BIN)/python tests/bench/signaling.py

clean:
	rm -rf $(VENV) var
