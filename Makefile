# The two commands of the README: `make run` (the service) and `make test` (the whole test suite).
# Both create .venv from pyproject.toml on first use; nothing needs installing by hand.
# Each target installs only what it needs: `run` the runtime and the embedded server, `test` adds the
# test tools, `bench` the benchmark tools. `make install EXTRAS=...` installs chosen extras.
PYTHON ?= python3
comma := ,
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= embedded,test,bench
RUN_EXTRAS := embedded
TEST_EXTRAS := embedded,test
BENCH_EXTRAS := embedded,bench
# pip rejects an empty extras list ('.[]'), so no extras means a plain '.'.
pip_target = $(if $(strip $(1)),'.[$(strip $(1))]',.)
# One stamp per extras list, so `make test` after `make run` installs the test tools and nothing else.
stamp = $(VENV)/.installed-$(if $(strip $(1)),$(subst $(comma),-,$(strip $(1))),runtime)

.PHONY: run test lint bench clean-venv install fresh-check

.DEFAULT_GOAL := install

# Before the venv exists: no usable Python, or one without the `venv`/`ensurepip` module (Debian and
# Ubuntu ship it separately), stops make with one line saying what to install.
define venv_problem
if ! command -v $(PYTHON) >/dev/null 2>&1; then echo "$(PYTHON) not found: install Python 3.11 or newer (or make PYTHON=/path/to/python3)"; \
elif ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo "$(PYTHON) is older than 3.11: install Python 3.11 or newer (or make PYTHON=python3.13)"; \
elif ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then echo "$(PYTHON) has no venv module: install it (Debian/Ubuntu: apt install python3-venv, or python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv)"; fi
endef
ifneq ($(filter-out clean-venv fresh-check,$(or $(MAKECMDGOALS),install)),)
ifeq ($(wildcard $(BIN)/python),)
VENV_PROBLEM := $(shell $(venv_problem))
ifneq ($(VENV_PROBLEM),)
$(error haowatch: $(VENV_PROBLEM))
endif
endif
endif

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e $(call pip_target,$(subst -,$(comma),$(subst runtime,,$*)))
	touch $@

install: $(call stamp,$(EXTRAS))

run: $(call stamp,$(RUN_EXTRAS))
	$(BIN)/haowatch run

test: $(call stamp,$(TEST_EXTRAS))
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(call stamp,$(BENCH_EXTRAS))
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_crawl.py
	$(BIN)/python benchmarks/bench_service.py
	$(BIN)/python benchmarks/bench_outputs.py

# Both README commands from a scratch clone on a simulated machine without PostgreSQL (needs root).
fresh-check:
	scripts/fresh-check $(FRESH_ARGS)

clean-venv:
	rm -rf $(VENV)
