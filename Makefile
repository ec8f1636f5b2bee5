# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   installs (first time), then runs the pipeline on samples/ into the embedded PostgreSQL
#   make test   installs (first time), then runs the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install demo test bench clean

$(VENV)/.installed: requirements.txt setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m pipeline.run --input samples

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .docpipe
