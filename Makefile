# make demo  — set everything up and run the demo on built-in generated data
# make test  — set everything up and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/multitask demo

test: setup
	$(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# Every benchmark (hours on a 2-core CPU); each writes its section of docs/benchmarks.md.
bench: setup
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/mulan.py
	$(PY) benchmarks/mulan_cv.py
	$(PY) benchmarks/roadsign.py
	$(PY) benchmarks/roadsign_resolution.py
	$(PY) benchmarks/hidden_labels.py
	$(PY) benchmarks/methods.py
	$(PY) benchmarks/advise_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
