# uimdata - every target sets itself up on a fresh clone.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORPUS  ?= uimdata/data/demo/corpus.parquet
RUN     ?= runs/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv chromium scan test bench lint clean

venv: $(STAMP)

# torch first, pinned: 2.13.0 is a CPU build lying on this machine's disk (a bare `torch` pulls CUDA).
$(STAMP): pyproject.toml .ci/constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c .ci/constraints.txt -e '.[dev]'
	# the oldest DuckDB that opens uim.duckdb, beside the venv's own: tests/test_safety.py reads a run with it
	$(BIN)/pip install -q --disable-pip-version-check --target $(VENV)/duckdb-1.1.3 duckdb==1.1.3
	touch $(STAMP)

scan: venv
	$(BIN)/uim scan $(CORPUS) -o $(RUN)
	$(BIN)/uim report $(RUN)

# Debian's Chromium for the report's browser test (tests/test_report.py drives it with Playwright).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

test: venv chromium
	$(BIN)/python -m pytest -q tests

bench: venv
	$(BIN)/python -m pipelines.bench
	$(BIN)/python -m pipelines.bench_domains

lint: venv
	$(BIN)/ruff check uimdata pipelines tests

clean:
	rm -rf $(VENV) runs .pytest_cache
