# Two commands do everything on a fresh machine:
#   make demo   venv + install + budgeted SimCLR pretraining on the embedded digits + linear probe
#   make test   venv + install + lint, type check and the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch is pinned on every pip call so that no other package can pull a different build.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo mini-paper test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]" $(TORCH)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) main_pretrain.py --config-name simclr_div
	$(PY) main_linear.py --config-name linear_div \
		"pretrained_feature_extractor='$$(ls -t trained_models/simclr/*/*.ckpt | head -n 1)'"

mini-paper: $(STAMP)
	bash scripts/mini_paper_fashion_mnist.sh

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy solo_diversity bench

test: lint
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) trained_models results datasets/digits
