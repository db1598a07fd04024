# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python builds from source; the native build segfaults at generation on some CPUs.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# A CPU build of torch first: an unpinned torch requirement pulls gigabytes of CUDA packages.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[all]'
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install --quiet -e '.[all,test]'
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

bench: $(VENV)/.test-installed
	$(PY) bench/router_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
