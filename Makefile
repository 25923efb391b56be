# mixstat: one command each on a fresh machine.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
EXTRAS ?= numba,torch,stats,plot,test,docs
PYTEST_ARGS ?= -q -n 2

.PHONY: install demo test test-fast bench docs docs-quick clean

$(VENV)/.installed: pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	# the pinned CPU wheel first, so that '.[torch]' installs nothing more
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/mixstat demo

test: $(VENV)/.installed
	$(VPY) -m pytest $(PYTEST_ARGS)

# everyday loop: skip the slow subprocess / docs-build tests
test-fast: $(VENV)/.installed
	$(VPY) -m pytest $(PYTEST_ARGS) -m "not slow"

bench: $(VENV)/.installed
	$(VPY) benchmarks/run_all.py

$(VENV)/.docs: $(VENV)/.installed
	$(VPY) -m pip install -q -e '.[docs]'
	touch $@

# the whole site, running every example of the gallery (about 6 minutes here)
docs: $(VENV)/.docs
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

# API and model pages only, examples not run (about 1 minute)
docs-quick: $(VENV)/.docs
	MIXSTAT_DOCS_GALLERY=0 $(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache mixstat-demo
