# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-long bench bench-1k clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src  # bytecode, also where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshlens demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-long: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/test_properties.py

bench: $(STAMP)
	$(BIN)/python bench/run.py  # compiles src/ to bytecode first, as an install would

# issue 18's 1,000-service targets and start-up, with a profile in bench/out/ for each miss
bench-1k: $(STAMP)
	$(BIN)/python bench/run.py --sizes 1000 --profile misses --json

clean:
	rm -rf $(VENV) build src/*.egg-info
