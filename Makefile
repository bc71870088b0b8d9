# The README's commands. `make setup` installs into the active virtualenv ($VIRTUAL_ENV) or ./.venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
PY := $(VENV)/bin/python
# Tests and benchmarks: one BLAS thread per process (2 shared cores) and no model-hub retries.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
PYTEST_ARGS ?=

.PHONY: setup quickstart test test-slow bench results pretrained-backbone demo-picture clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY)
	$(PY) tools/setup_env.py

# One BLAS thread: the synthetic models are small, and two threads on two cores shared with the data
# loader made training several times slower.
quickstart: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) tools/quickstart.py

test: setup
	$(TEST_ENV) $(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(TEST_ENV) $(PY) -m pytest tests -m slow $(PYTEST_ARGS)

bench: setup
	$(TEST_ENV) $(PY) tools/benchmark_data_loader.py
	$(TEST_ENV) $(PY) tools/benchmark_evaluator.py --workers 2
	$(TEST_ENV) $(PY) tools/benchmark_demo.py

# runs side by side in `make results` (one thread each)
RESULTS_JOBS ?= 2

results: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) tools/synthetic_results.py --jobs $(RESULTS_JOBS)

# Rebuilds zegcag/model_zoo/synthetic_backbone.pth, the synthetic configs' starting weights (about 15 minutes
# on one core); --resume continues an interrupted run, or only re-evaluates a finished one.
PRETRAIN_DIR ?= output/pretrain_synthetic_backbone

pretrained-backbone: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) datasets/prepare_synthetic.py --classes coco
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) tools/train_net.py --resume \
		--config-file configs/pretrain_synthetic_backbone.yaml OUTPUT_DIR $(PRETRAIN_DIR)
	$(PY) tools/extract_backbone.py $(PRETRAIN_DIR)/model_final.pth zegcag/model_zoo/synthetic_backbone.pth --overwrite

demo-picture: setup
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) tools/make_demo_picture.py --overwrite

clean-venv:
	rm -rf $(CURDIR)/.venv
