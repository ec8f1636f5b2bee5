# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   installs (first time), then runs the pipeline on samples/ into the embedded PostgreSQL
#   make test   installs (first time), then runs the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install demo test bench clean browser

$(VENV)/.installed: requirements.txt setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m pipeline.run --input samples

test: install browser
	$(PY) -m pytest

# The web page's tests drive a real headless Chromium: Debian's chromium and its chromedriver,
# installed with apt only when missing (as root, or through sudo).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .docpipe
