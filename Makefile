# Proctor: `make run` starts the console on an embedded stack, `make test` runs the whole suite.
SHELL := /bin/bash
# Taken when make starts, before the install: `make run` reports time to ready from here.
T0 := $(shell date +%s.%N)
# Python 3.12 or newer: the first of python3.13, python3.12, python3 (or a pyenv-installed 3.12+) that runs and is new enough.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 $$(pyenv root 2>/dev/null)/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test install browser bench clean check-compose

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: Proctor needs Python 3.12 or newer (its embedded PostgreSQL 17 comes as a 3.12+ package);" \
	  "none was found as python3.13, python3.12, python3 or under pyenv. Install it, or name it: make PYTHON=/path/to/python3.12" >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit("Proctor needs Python 3.12 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 12) else None'
	@# A virtualenv made by an older Python (before 3.12 was required) is made again.
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then rm -rf $(VENV); fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Proctor and its dependencies into $(VENV) (first time only) ..."
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e ".[embedded,dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@PROCTOR_T0=$(T0) $(PY) -m console.devstack run

# Browser tests drive Debian's Chromium. Install it when missing and we can (root or sudo);
# under CI a missing browser fails the build instead of skipping tests.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests ..."; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  fi; \
	fi
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$CI" = true ]; then echo "error: $(CHROMIUM) is missing and could not be installed; browser tests cannot run" >&2; exit 1; \
	  else echo "warning: $(CHROMIUM) is missing: browser tests will be skipped (install the 'chromium' package)" >&2; fi; \
	fi

test: $(STAMP) browser
	@$(PY) -m console.devstack test -- $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@$(PY) -m pip install -q -e ".[embedded,dev,bench]"
	@$(PY) -m bench

check-compose:
	@SECRET_KEY=$${SECRET_KEY:-compose-check} sh -c 'if docker compose version >/dev/null 2>&1; then docker compose config --quiet; else docker-compose config -q; fi' && echo "docker-compose.yml is valid"

clean:
	rm -rf $(VENV) var/test staticfiles
