# The course's two commands:  `make lab` (start the course) and `make test` (run every test).
# Both create the virtual environment .venv from the pinned requirements the first time
# (python3 -m course_lib.setup_env: the CPU build of torch on Linux without an NVIDIA GPU).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Which torch build: auto (CPU build on Linux without an NVIDIA GPU), cpu, cuda or pypi.
TORCH       ?= auto
# An extra package index for torch, overriding the choice's (e.g. https://download.pytorch.org/whl/cu121).
TORCH_INDEX ?=
# make lab PORT=8890 NO_BROWSER=1 (as root, --allow-root is added by itself); LAB_ARGS: more options.
PORT        ?= 8888
NO_BROWSER  ?=
LAB_ARGS    ?=
PYTEST      = $(PY) -m pytest -p no:cacheprovider
NOTEBOOK_TESTS = -m notebook tests/test_notebook_outputs.py
PLAYWRIGHT  ?= playwright==1.65.2

TORCH_CHOICE := $(shell $(PYTHON) -m course_lib.setup_env choice $(TORCH) 2>/dev/null || echo $(TORCH))
INSTALLED    := $(shell head -n 1 $(STAMP) 2>/dev/null)

.PHONY: lab update-work test test-portable test-browser setup build run stale lock clean FORCE

lab: $(STAMP)  ## start JupyterLab on work/, your own copies of the notebooks (made on first use)
	@$(PY) -m course_lib work
	JUPYTER_PATH=$(abspath $(VENV))/share/jupyter $(VENV)/bin/jupyter lab --notebook-dir=work --port=$(PORT) \
	  $(if $(NO_BROWSER),--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

update-work: $(STAMP)  ## copy new notebooks into work/ (a notebook you edited is never touched)
	$(PY) -m course_lib work

test: $(STAMP)  ## lint, unit tests, then every notebook: solutions reproduce their stored outputs, student versions run
	$(PY) -m ruff check course_lib tests notebooks/src conftest.py
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

# A student's session in a real browser: JupyterLab headless + Debian's Chromium driven by Playwright
# (installed here when missing; Chromium only as root with apt-get, else the test says it is skipped).
test-browser: $(STAMP)  ## run student notebooks in headless Chromium: no errors, figures, live slider (build/browser/)
	@$(PY) -c 'import playwright' 2>/dev/null || $(PY) -m pip install --progress-bar on $(PLAYWRIGHT)
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "no /usr/bin/chromium, and no root + apt-get to install it: the browser test will be skipped"; fi; }
	$(PYTEST) -m browser -rs tests/browser

setup: $(STAMP)

# A changed torch choice (TORCH=..., a GPU added or removed) rebuilds the environment.
ifneq ($(TORCH_CHOICE),$(INSTALLED))
$(STAMP): FORCE
endif
$(STAMP): requirements.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version'
	$(PYTHON) -m course_lib.setup_env install --venv $(VENV) --torch $(TORCH_CHOICE) $(if $(TORCH_INDEX),--index $(TORCH_INDEX))

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

FORCE:
