# One command for everything a change must pass: `make check` (ruff, then the tests).
# `make test` is the README's test command, which is also what .ci/run runs.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: check lint test snapshots bench

check: lint test

$(PY):
	python3 -m venv $(VENV) && $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[dev]'

lint: $(PY)
	$(VENV)/bin/ruff check .

test:
	bash .ci/run

snapshots: $(PY)
	$(PY) -m pytest -q tests/ui/test_snapshots.py --snapshot-update

bench: $(PY)
	$(PY) bench/run.py
