# The course's two commands:  `make lab` (start the course) and `make test` (run every test).
# Both create the virtual environment .venv from the pinned requirements the first time.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# Optional extra index, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for a CPU-only torch.
TORCH_INDEX ?=
PIP_EXTRA   = $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
NBVAL       = -p no:cacheprovider --nbval-kernel-name course-offline --dist loadfile -n 2

.PHONY: lab test setup build run stale lock clean

lab: $(STAMP)  ## start JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)  ## unit tests, then the solution notebooks (strict nbval), then the student notebooks (lax)
	$(PY) -m pytest -n 2 tests
	$(PY) -m pytest $(NBVAL) --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/solutions
	$(PY) -m pytest $(NBVAL) --nbval-lax notebooks/[0-9][0-9]_*.ipynb

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
