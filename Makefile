# sparsity_lab: two commands do everything: `make figures` and `make test`.
# Each creates (or reuses) the virtual environment in .venv first.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.setup-stamp
PROFILE    ?= quick
TEST_WORKERS ?= auto
# The slowest tests are printed at the end, so the suite's time stays visible (PYTEST_ARGS= to silence).
PYTEST_ARGS ?= --durations=15
NOTEBOOKS  ?=
# The shipped results of the gpu profile: `make figures PROFILE=gpu` imports them (a no-op once imported) and
# renders from them, training nothing. `GPU_BUNDLE=` (empty) on a GPU host trains the profile instead.
GPU_BUNDLE ?= docs/gpu-results/gpu-bundle.tar.xz
DATA_ROOT  ?= $(or $(SPARSITY_LAB_DATA),data)
# In the development workplace a copy of the original MNIST/FashionMNIST files sits in ../shared/data;
# elsewhere torchvision downloads them on first use.
SHARED_DATA ?= ../shared/data
export SPARSITY_LAB_DATA := $(abspath $(DATA_ROOT))
# Absolute, so notebooks (whose kernels run in notebooks/) and the CLI share one results store.
export SPARSITY_LAB_RESULTS := $(abspath $(or $(SPARSITY_LAB_RESULTS),results))
# Every test subprocess and notebook kernel imports the package: Python keeps its compiled bytecode
# (__pycache__/, git-ignored) even where the shell sets PYTHONDONTWRITEBYTECODE, or each one compiles it again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup test figures lab lint data clean-reports help strip

help:
	@echo "make figures [PROFILE=quick|smoke|gpu|paper] [NOTEBOOKS='01 07 ...']           regenerate reports/"
	@echo "             [PREFETCH=N]  first train every run the notebooks need, N workers per device (GPU hosts)"
	@echo "             [EXECUTOR=slurm|submitit-local]  first train those runs as cluster jobs (README: On a cluster)"
	@echo "             [FORCE=1]  execute every notebook, also those whose inputs are unchanged since the last run"
	@echo "make test                                                                        run the test suite"
	@echo "make lab                                                                         Jupyter Lab on notebooks/"
	@echo "make strip                                                                       strip outputs of notebooks saved in Jupyter (before committing)"
	@echo "make lint                                                                        ruff"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name sparsity_lab --display-name "Python (sparsity_lab)" >/dev/null
	@touch $(STAMP)

# Copies the shipped raw files (if this machine has them) into the git-ignored data root;
# torchvision then verifies their MD5 and extracts them without network access.
data:
	@for ds in MNIST FashionMNIST; do \
	  if [ -d "$(SHARED_DATA)/$$ds/raw" ] && [ ! -d "$(DATA_ROOT)/$$ds/raw" ]; then \
	    mkdir -p "$(DATA_ROOT)/$$ds" && cp -r "$(SHARED_DATA)/$$ds/raw" "$(DATA_ROOT)/$$ds/"; \
	    echo "copied $$ds raw files into $(DATA_ROOT)"; \
	  fi; \
	done

# The suite's files are independent: one pytest-xdist worker per core, each file on one worker (its module
# fixtures built once). TEST_WORKERS=0 runs it in this process (e.g. with --pdb).
test: setup data
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

figures: setup data
	$(if $(and $(filter gpu,$(PROFILE)),$(wildcard $(GPU_BUNDLE))),$(PY) -m sparsity_lab bundle import $(GPU_BUNDLE))
	$(PY) -m sparsity_lab.report --profile $(PROFILE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) \
		$(if $(PREFETCH),--prefetch-workers $(PREFETCH)) $(if $(EXECUTOR),--executor $(EXECUTOR)) \
		$(if $(filter gpu,$(PROFILE)),--stored-only) $(if $(FORCE),--force)

# Root is the default user in containers and GPU images; Jupyter refuses it without --allow-root.
lab: setup data
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# Notebooks are edited in Jupyter and committed without outputs: one step after saving.
strip: setup
	$(VENV)/bin/nbstripout --drop-empty-cells --keep-id --extra-keys "metadata.language_info cell.metadata.execution cell.metadata.collapsed cell.metadata.scrolled cell.metadata.trusted" notebooks/*.ipynb

lint: setup
	$(VENV)/bin/ruff check sparsity_lab tests benchmarks

clean-reports:
	rm -rf reports/
