# Two entry points (see README): `make demo` runs the main job, `make test` the test suite.
# Both create the virtual environment .venv and install kiloml into it first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kiloml-installed

.PHONY: setup demo test lint clean

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

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs build *.egg-info
