# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Every install takes its exact versions from the lock, builds from source included;
# `make lock` writes it (docs/development.md).
LOCK := requirements.lock
INSTALL := $(PIP) install --quiet --constraint $(LOCK) --build-constraint $(LOCK)
# The extras the lock covers: all of pyproject.toml's but `all`, which names agentrig
# itself (pip-compile would pin the project to its own folder).
EXTRAS := local anthropic gemini postgres redis s3 mcp test bench
# llama-cpp-python builds from source; the native build segfaults at generation on some CPUs.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint bench lock clean

$(VENV)/.pip-installed: $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	# pip first, at the locked version: the one venv brings knows no --build-constraint.
	$(PIP) install --quiet --constraint $(LOCK) pip
	touch $@

$(VENV)/.installed: $(VENV)/.pip-installed pyproject.toml
	$(INSTALL) -e '.[all]'
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(INSTALL) -e '.[all,test]'
	touch $@

$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(INSTALL) -e '.[all,test,bench]'
	touch $@

run: $(VENV)/.installed
	# The bundled sample knowledge base (unchanged files are skipped), a question about it
	# answered with sources by the local model, then the server.
	$(VENV)/bin/agentrig ingest src/agentrig/samples/kb --kb samples
	$(VENV)/bin/agentrig chat "How long does a full charge of the E3 battery take?" --kb samples
	$(VENV)/bin/agentrig serve

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

test: lint
	$(VENV)/bin/pytest

bench: $(VENV)/.bench-installed
	$(PY) bench/router_overhead.py

# Re-resolve the lock from pyproject.toml and requirements.in. Pins that still fit are
# kept; UPGRADE="lxml markitdown" moves those packages to their newest release, UPGRADE=all
# every package. Then `make test` and commit the lock with what changed.
lock: $(VENV)/.pip-installed
	$(INSTALL) pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		$(addprefix --extra ,$(EXTRAS)) \
		$(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE))) \
		--output-file $(LOCK) pyproject.toml requirements.in

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
