# The two commands a new user needs: `make demo` and `make test`. Each sets everything up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data
REPORT ?= out/report.html
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
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

# Writes $(DEMO_DIR)/sim/, $(DEMO_DIR)/traces.duckdb and $(REPORT).
demo: $(STAMP)
	$(BIN)/toolkit demo $(DEMO_DIR) --report $(REPORT)

lint: $(STAMP)
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/ruff format --check toolkit tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) browser lint typecheck
	$(BIN)/python -m pytest -q --durations=15

# Headless: prints the URL (with its token) to open; as root (containers) with --allow-root.
# LAB_IP=0.0.0.0 makes it reachable from outside a container.
lab: $(STAMP)
	@echo "JupyterLab on notebooks/: open the http://$(LAB_IP):$(LAB_PORT)/lab?token=... URL printed below (Ctrl-C stops it)"
	$(BIN)/jupyter lab --no-browser --ip=$(LAB_IP) --port=$(LAB_PORT) \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) --notebook-dir=notebooks

# Prints figures, asserts nothing; the 10M-event analysis run takes several minutes.
bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/ingest_otlp.py
	$(BIN)/python benchmarks/analyze.py
	$(BIN)/python benchmarks/attribution.py

clean:
	rm -rf $(VENV) $(DEMO_DIR)/traces.duckdb $(DEMO_DIR)/sim out .pytest_cache .ruff_cache .mypy_cache
