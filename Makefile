# Two commands a newcomer runs: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint package anki system-deps clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tools.demo

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest

# Debian libraries Qt WebEngine needs to run Anki headless in the end-to-end tests.
system-deps:
	bash tools/system_deps.sh

package: $(STAMP)
	$(PY) -m tools.package

anki: $(STAMP)
	$(PY) -m tools.run_anki

bench: $(STAMP)
	$(PY) -m tools.bench

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .demo .anki-demo dist .bench .pytest_cache .ruff_cache
