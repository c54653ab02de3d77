# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and install the package with its test extra.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m chatmodels_langchain demo

test: $(STAMP)
	$(BIN)/ruff check chatmodels_langchain tests benchmarks
	$(BIN)/mypy chatmodels_langchain
	$(BIN)/python -m pytest -q --benchmark-disable

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
