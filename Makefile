# Two entry points (see README): `make demo` runs the main job, `make test` the test suite.
# Both create the virtual environment .venv and install kiloml into it first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kiloml-installed
SWEEP_STAMP := $(VENV)/.kiloml-sweep-installed

.PHONY: setup demo test lint bench-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "kiloml needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the default dataset: seglearn's smartwatch recordings (its code is not needed)
	$(BIN)/pip install --quiet --no-deps seglearn==1.2.5
	# UEA .ts files (BasicMotions, JapaneseVowels) from sktime's package data (its code is not needed)
	$(BIN)/pip install --quiet --no-deps sktime==1.2.0
	touch $(STAMP)

demo: setup
	$(BIN)/kiloml demo --out runs/demo --overwrite

# the optional `sweep` extra (Ray Tune, Optuna): `make demo` does not need it, the tests run real Ray
$(SWEEP_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,sweep]'
	touch $(SWEEP_STAMP)

test: $(SWEEP_STAMP)
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

# The benchmarks' own environment: TensorFlow, tflite-micro and EdgeML for the comparisons in
# docs/benchmarks.md. kiloml never imports them.
BENCH_VENV := .venv-bench
bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: benchmarks/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r benchmarks/requirements.txt -e .
	# EdgeML 0.3.0 without its unpinned torch requirement (which would pull a CUDA build)
	$(BENCH_VENV)/bin/pip install --quiet --no-deps edgeml-pytorch==0.3.0
	touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs build *.egg-info
