# mixstat: one command each on a fresh machine.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
EXTRAS ?= numba,torch,stats,plot,test,docs,formula
PYTEST_ARGS ?= -q -n 2
# installed before the extras (empty: no torch, as in test-no-torch)
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test test-fast bench docs docs-quick clean \
	test-no-numba test-no-torch test-nojit

$(VENV)/.installed: pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	# the pinned CPU wheel first, so that '.[torch]' installs nothing more
	$(if $(TORCH_PIN),$(VPY) -m pip install -q $(TORCH_PIN))
	$(VPY) -m pip install -q -e '.[$(EXTRAS)]'
	# compile the Numba kernels now (once), not on the user's first fit
	$(VENV)/bin/mixstat compile
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/mixstat demo

test: $(VENV)/.installed
	$(VPY) -m pytest $(PYTEST_ARGS)

# everyday loop: skip the slow subprocess / docs-build tests
test-fast: $(VENV)/.installed
	$(VPY) -m pytest $(PYTEST_ARGS) -m "not slow"

# The whole suite with an optional backend absent (issue #7; not in CI, see
# docs/backends.md "Optional backends absent"). Each builds its own venv.
NONUMBA := VENV=.venv-nonumba EXTRAS=torch,stats,plot,test,docs
NOTORCH := VENV=.venv-notorch EXTRAS=numba,stats,plot,test,docs TORCH_PIN=

test-no-numba:
	$(MAKE) install $(NONUMBA)
	@! .venv-nonumba/bin/python -c 'import numba' 2>/dev/null || \
	  { echo "numba is installed in .venv-nonumba (pulled in by a dependency)" >&2; exit 1; }
	$(MAKE) test $(NONUMBA)

test-no-torch:
	$(MAKE) install $(NOTORCH)
	@! .venv-notorch/bin/python -c 'import torch' 2>/dev/null || \
	  { echo "torch is installed in .venv-notorch (pulled in by a dependency)" >&2; exit 1; }
	$(MAKE) test $(NOTORCH)

# Numba installed but every kernel run as Python (slow)
test-nojit: $(VENV)/.installed
	NUMBA_DISABLE_JIT=1 $(VPY) -m pytest $(PYTEST_ARGS)

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
	rm -rf $(VENV) .venv-nonumba .venv-notorch build dist *.egg-info .pytest_cache mixstat-demo
