# The two commands of the README. Both create .venv if missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench notebooks clean

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

# every benchmark writes its own section of benchmarks/RESULTS.md (a missing script is skipped)
BENCHMARKS := analysis_speed ui_latency latency_table predictor_accuracy proxies train_speed

bench: $(STAMP)
	@for b in $(BENCHMARKS); do \
	  if [ -f benchmarks/$$b.py ]; then echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; fi; \
	done

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks]"
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser notebooks/

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
