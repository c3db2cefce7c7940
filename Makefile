# make demo  — set everything up and run the demo on built-in generated data
# make test  — set everything up and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup browser demo test test-fast test-readme lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The browser tests render the HTML reports in Debian's chromium: installed here when it is missing and we are
# root with apt-get (as in CI); otherwise nothing is installed and those tests are skipped, saying why.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update && apt-get install -y --no-install-recommends chromium) \
	    || echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "no chromium (and not root with apt-get): the browser tests will be skipped"; fi

demo: setup
	$(VENV)/bin/multitask demo

test: setup browser
	$(PY) -m pytest -n 2 --dist loadfile -m "not readme" $(PYTEST_ARGS)

# Every README command run as written on tiny data (tests/test_readme.py; ~15 min on 2 cores).
test-readme: setup
	$(PY) -m pytest -n 2 -m readme $(PYTEST_ARGS)

test-fast: setup browser
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow and not readme" $(PYTEST_ARGS)

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
