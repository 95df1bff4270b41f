# sharedbasis_mm: `make demo` runs the main job, `make test` the tests.
# Both first install what is missing (tools/install_env.sh): a virtual
# environment in $(VENV) with the verified stack and mmcv built with its ops.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.sharedbasis_mm-installed
# the tests run in one pytest-xdist worker per core, a test file to a
# worker (its module fixtures are built once); PYTEST_WORKERS=0 runs them in
# this process
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=
# e.g. DEMO_ARGS='--backbones r18-s8u1 r18 tiedr50' or '--seed 1'
DEMO_ARGS ?=

.PHONY: install test demo model-table model-index clean

install: $(STAMP)

$(STAMP): tools/install_env.sh requirements/verified.txt requirements.txt \
		requirements/optional.txt requirements/mim.txt setup.py
	bash tools/install_env.sh $(VENV)
	touch $@

test: $(STAMP)
	$(PYTHON) -m pytest tests -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: $(STAMP)
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

model-table: $(STAMP)
	$(PYTHON) tools/analysis_tools/model_table.py

model-index: $(STAMP)
	$(PYTHON) tools/misc/model_index.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache sharedbasis_mm/.mim
