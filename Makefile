# The two README commands: `make demo` and `make test`. Both set themselves up from a fresh clone.
# `make bench-check` is the corpus check: it downloads the benchmark's sdists from PyPI, so it is not
# part of `make test`, which reaches the package index only while installing (venv, wheelhouse).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Wheels of autofix's runtime dependencies (and of its build backend), for the test that installs the
# built wheel into a fresh virtualenv without touching the package index.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.stamp
# System packages the sandbox and the tests need (Debian names); chromium runs the review UI's browser tests.
SYSTEM_PACKAGES := bubblewrap git chromium

.PHONY: demo test deploy-check bench-check bench-localisation bench-llm venv wheelhouse system-deps lint typecheck docs screenshots clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

wheelhouse: $(WHEELHOUSE_STAMP)

$(WHEELHOUSE_STAMP): pyproject.toml $(STAMP)
	$(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
	  > $(VENV)/runtime-requirements.txt
	$(PY) -m pip wheel -q -w $(WHEELHOUSE) -r $(VENV)/runtime-requirements.txt 'setuptools>=69' wheel
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

# Two pytest workers (pytest-xdist): most tests wait on subprocesses, containers and servers, so two
# share this 2-core machine well (16.5 min serial, 10 min with two, here). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2

test: venv wheelhouse system-deps lint typecheck
	AUTOFIX_TEST_WHEELHOUSE=$(abspath $(WHEELHOUSE)) $(VENV)/bin/pytest -n $(TEST_WORKERS)

# deploy/compose.yaml brought up as a whole on Podman (podman-compose, the offline Redis and PostgreSQL
# images), real errors sent in, a candidate awaiting review seen on the JSON API, all torn down again:
# minutes, so not part of `make test`. deploy/smoke.sh says what it builds and checks.
deploy-check: venv
	deploy/smoke.sh

# The benchmark corpus stays honest (each case crashes on its buggy release, passes on its fixed
# one), and the tests that run real cases: all download sdists from PyPI (cached in bench/.cache/).
bench-check: venv system-deps
	$(PY) bench/check_corpus.py
	$(VENV)/bin/pytest -m network

# Localisation only: recall@1/@5 of stack-only against fused (stack + BM25) on the crash suite, no
# patches; seconds once bench/.cache holds the sdists and the captured events.
bench-localisation: venv
	$(PY) -m pipeline bench --localisation-only --markdown

# The crash benchmark with templates and then the LLM fixer on a real local model (Qwen2.5-Coder-1.5B,
# llama.cpp's server), provisioned and cached under ~/.cache/autofix-llm: see bench/llm/run.sh.
bench-llm: venv system-deps
	bench/llm/run.sh

# The README's command reference, regenerated from the CLI (tests/test_docs.py fails when it drifts).
docs: venv
	$(PY) -m pipeline.cli.docs

# The README's screenshots of the review UI: a real demo store in headless Chromium.
screenshots: venv system-deps
	$(PY) docs/take_screenshots.py

lint: venv
	$(VENV)/bin/ruff check pipeline sandbox workers tests bench examples docs deploy setup.py

typecheck: venv
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .autofix .pytest_cache .mypy_cache build dist
