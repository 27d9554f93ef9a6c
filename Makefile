# The two quick-start commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test quick bench clean

$(BIN)/ore: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/ore
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/ore
	$(BIN)/ore demo

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest -n 2 -q

quick: $(VENV)/.test-deps
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: $(BIN)/ore
	$(BIN)/python bench/run.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) ore-workspace demo-out
