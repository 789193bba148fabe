# The two README commands: `make demo` and `make test`. Both set themselves up from a fresh clone.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# System packages the sandbox and the tests need (Debian names).
SYSTEM_PACKAGES := bubblewrap git

.PHONY: demo test venv system-deps lint typecheck clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; \
	fi

demo: venv system-deps
	$(VENV)/bin/autofix demo

test: venv system-deps lint typecheck
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check pipeline sandbox workers tests bench examples

typecheck: venv
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .autofix .pytest_cache .mypy_cache
