# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-long bench bench-1k bytecode clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(MAKE) bytecode
	touch $(STAMP)

# The package is installed editable: compile its bytecode now (as pip does for the others) so
# the first runs, and runs from a read-only checkout, do not compile every module as they start.
bytecode:
	$(BIN)/python -m compileall -q src

demo: $(STAMP)
	$(BIN)/meshlens demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-long: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/test_properties.py

bench: $(STAMP) bytecode
	$(BIN)/python bench/run.py

# issue 18's 1,000-service targets and start-up, with a profile in bench/out/ for each miss
bench-1k: $(STAMP) bytecode
	$(BIN)/python bench/run.py --sizes 1000 --profile misses --json

clean:
	rm -rf $(VENV) build src/*.egg-info
