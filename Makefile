# Two commands a newcomer runs: `make demo` and `make test`. Both build .venv themselves;
# the demo installs only the engine (requirements-engine.txt), the tests everything else too.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENGINE := $(VENV)/.engine-installed
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-scale lint package anki system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(ENGINE): requirements-engine.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-engine.txt
	touch $(ENGINE)

$(STAMP): requirements.txt $(ENGINE)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(ENGINE)
	$(PY) -m tools.demo

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

# Debian libraries Qt WebEngine needs to run Anki headless in the end-to-end tests.
system-deps:
	bash tools/system_deps.sh

package: | $(PY)
	$(PY) -m tools.package

anki: $(STAMP)
	$(PY) -m tools.run_anki

bench: $(ENGINE)
	$(PY) -m tools.bench

# The bench plus one first sync of 200,000 notes (a few minutes and a few GB of memory).
bench-scale: $(STAMP)
	$(PY) -m tools.bench --scale 200000

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .demo .anki-demo dist .bench .pytest_cache .ruff_cache
