# mixstat: one command each on a fresh machine.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
EXTRAS ?= numba,torch,stats,plot,test
PYTEST_ARGS ?= -q -n 2

.PHONY: install demo test test-fast bench docs clean

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

bench: $(VENV)/.installed
	$(VPY) benchmarks/run_all.py

docs: $(VENV)/.installed
	$(VPY) -m pip install -q -e '.[docs]'
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache mixstat-demo
