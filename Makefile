# The course's two commands:  `make lab` (start the course) and `make test` (run every test).
# Both create the virtual environment .venv from the pinned requirements the first time.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Optional extra index, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for a CPU-only torch.
TORCH_INDEX ?=
PIP_EXTRA   = $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
PYTEST      = $(PY) -m pytest -p no:cacheprovider
NOTEBOOK_TESTS = -m notebook tests/test_notebook_outputs.py

.PHONY: lab test test-portable setup build run stale lock clean

lab: $(STAMP)  ## start JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)  ## unit tests, then every notebook: solutions reproduce their stored outputs, student versions run
	$(PYTEST) -n 2 -m "not notebook and not browser" tests
	$(PYTEST) -n 2 $(NOTEBOOK_TESTS)

# The notebook suite on other floating-point paths: torch's portable kernels, AVX2, this CPU's own
# best kernels, and two threads. Only the last digits of trained results may move (course_lib/outputs.py).
test-portable: $(STAMP)  ## the notebook suite under ATEN_CPU_CAPABILITY=default, =avx2, this CPU's own, and 2 threads
	@own=$$($(PY) -c 'import torch; print(torch.backends.cpu.get_cpu_capability())'); failed=""; \
	echo "== this CPU's own capability ($$own), 1 thread"; $(PYTEST) -n 2 $(NOTEBOOK_TESTS) || failed="$$failed own"; \
	echo "== ATEN_CPU_CAPABILITY=default"; ATEN_CPU_CAPABILITY=default $(PYTEST) -n 2 $(NOTEBOOK_TESTS) || failed="$$failed default"; \
	case $$own in AVX2|AVX512*) echo "== ATEN_CPU_CAPABILITY=avx2"; \
	    ATEN_CPU_CAPABILITY=avx2 $(PYTEST) -n 2 $(NOTEBOOK_TESTS) || failed="$$failed avx2";; \
	  *) echo "== ATEN_CPU_CAPABILITY=avx2: skipped, this CPU ($$own) has no AVX2";; esac; \
	echo "== this CPU's own capability, 2 threads per kernel"; \
	COURSE_KERNEL_THREADS=2 $(PYTEST) -n 1 $(NOTEBOOK_TESTS) || failed="$$failed 2-threads"; \
	if [ -n "$$failed" ]; then echo "test-portable FAILED under:$$failed"; exit 1; fi; echo "test-portable: all passed"

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(PIP_EXTRA) -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

build: $(STAMP)  ## regenerate student + solution notebooks from notebooks/src (NB="00 01" for some)
	$(PY) -m course_lib build $(NB)

run: $(STAMP)  ## run the course headless; prints wall time and peak memory per notebook
	$(PY) -m course_lib run $(NB)

stale: $(STAMP)
	$(PY) -m course_lib stale

lock: $(STAMP)  ## rewrite constraints.txt from the environment (after changing requirements.txt)
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' > constraints.txt

clean:
	rm -rf build .pytest_cache
