# The commands of the README. Each creates .venv if missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install bench notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned to 2.13.0 (a CPU build lies on this machine's disk); an unpinned torch pulls CUDA.
$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/explorer ui --host 127.0.0.1 --port 7860

test: $(STAMP)
	$(BIN)/python -m pytest -q

# everything but the tests marked slow (each over ~5 s, the browser tests among them)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# ruff over the whole tree (tests, benchmarks and notebooks included), mypy over the packages
# (the paths and settings of both live in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# every benchmark writes its own section of benchmarks/RESULTS.md (a missing script is skipped)
BENCHMARKS := analysis_speed ui_latency ui_load latency_table predictor_accuracy proxies train_speed fuzz_specs search_speed

bench: $(STAMP)
	@for b in $(BENCHMARKS); do \
	  if [ -f benchmarks/$$b.py ]; then echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; fi; \
	done

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks]"
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
