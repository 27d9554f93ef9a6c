# The two quick-start commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test quick bench docs clean

$(BIN)/ore: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/ore
	@# the FollowTheMoney extra builds PyICU, which needs ICU's headers: install them where apt can
	@if ! pkg-config --exists icu-uc 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libicu-dev pkg-config; fi
	@# the browser tests drive Debian's chromium (Playwright never downloads one here)
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi
	$(BIN)/pip install --quiet -e '.[test,ftm,spark,docs]'
	@touch $@

demo: $(BIN)/ore
	$(BIN)/ore demo

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest -n 2 -q

quick: $(VENV)/.test-deps
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

# every benchmark (triage at 7k, 100k and 400k records beside the naive exact-match method, quality, watch,
# API latency; also on PostgreSQL where ORE_BENCH_PG_URL names a scratch database, which is emptied)
# into bench/results.json and bench/results.md
bench: $(VENV)/.test-deps  # bench/web.py drives the server with httpx, a test dependency
	$(BIN)/python bench/run.py

# the documentation site, static and self-contained, into build/site/ (open build/site/index.html)
$(VENV)/.docs-deps: $(BIN)/ore
	$(BIN)/pip install --quiet -e '.[docs]'
	@touch $@

docs: $(VENV)/.docs-deps
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) ore-workspace demo-out
