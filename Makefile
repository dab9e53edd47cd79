# The two commands a new user needs: `make demo` and `make test`. Each sets everything up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= data/traces.duckdb
REPORT ?= out/report.html
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint typecheck lab bench browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Headless Chromium for the report's browser test and PNG export (Debian's package; needs root).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install Debian's 'chromium' package for the browser tests"; fi; }

demo: $(STAMP)
	$(BIN)/toolkit demo --db $(DB) --out $(REPORT)

lint: $(STAMP)
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/ruff format --check toolkit tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) browser lint typecheck
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Prints figures, asserts nothing; the 10M-event analysis run takes several minutes.
bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/ingest_otlp.py
	$(BIN)/python benchmarks/analyze.py
	$(BIN)/python benchmarks/attribution.py

clean:
	rm -rf $(VENV) $(DB) out .pytest_cache .ruff_cache .mypy_cache
