# The two commands of the README: `make run` (the service) and `make test` (the whole test suite).
# Both create .venv from pyproject.toml on first use; nothing needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Optional dependency groups installed into .venv; `make install EXTRAS=` installs the runtime only.
EXTRAS ?= embedded,test,bench
# pip rejects an empty extras list ('.[]'), so no extras means a plain '.'.
PIP_TARGET = $(if $(strip $(EXTRAS)),'.[$(strip $(EXTRAS))]',.)

.PHONY: run test lint bench clean-venv install

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e $(PIP_TARGET)
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/haowatch run

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_crawl.py
	$(BIN)/python benchmarks/bench_service.py

clean-venv:
	rm -rf $(VENV)
