# The two commands a newcomer needs:
#   make book   build the book into book/_build/html
#   make test   run every check CI runs
# Everything is installed into .venv (Python) and node_modules (npm) on first
# use; the stamp files make later runs skip the install.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NPM_INSTALLED := node_modules/.installed
HTML := book/_build/html
WIDGETS_DIST := node_modules/@jupyter-widgets/html-manager/dist
WIDGETS_STATIC := book/_assets/widgets
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg
# Jupyter refuses to run as root unless told.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help book test lint unit nbval browser chromium lab notebooks links clean distclean install

help:
	@echo "make book       build the book into $(HTML)"
	@echo "make test       ruff, mypy, unit tests, nbval over notebooks/, book build, browser tests (book, live JupyterLab)"
	@echo "make lab        JupyterLab on notebooks/"
	@echo "make kernel-check  run the scenarios on the model and on Linux 6.12 and 6.1 in QEMU, compare"
	@echo "make selftests-check  run the kernel's own cow.c in QEMU, compare with scenarios/cow/"
	@echo "make notebooks  re-execute notebooks/*.ipynb in place and strip volatile metadata"
	@echo "make links      regenerate book/external-links.md (make notebooks does it too)"
	@echo "make clean      remove build output (make distclean also removes .venv and node_modules)"

# ---- installation (skipped when nothing changed) ----------------------------

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

install: $(INSTALLED)

$(NPM_INSTALLED): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The ipywidgets runtime for the static book comes from npm, not from a CDN.
$(WIDGETS_STATIC)/embed.js: $(NPM_INSTALLED)
	@mkdir -p $(WIDGETS_STATIC)
	cp $(WIDGETS_DIST)/embed.js $(WIDGETS_DIST)/*.woff2 $(WIDGETS_DIST)/*.woff \
	   $(WIDGETS_DIST)/*.ttf $(WIDGETS_STATIC)/

# ---- the book ------------------------------------------------------------------

# The scenario lab (book/lab.md) runs anonlib in the reader's browser: Pyodide from npm
# and a zip of anonlib/ and scenarios/ of this tree, into book/_assets/lab/ (git-ignored).
LAB_STATIC := book/_assets/lab

# --all rebuilds every page so that -W sees every warning, not just new ones.
book: $(INSTALLED) $(WIDGETS_STATIC)/embed.js $(NPM_INSTALLED)
	$(BIN)/python tools/book_source.py
	$(BIN)/python tools/lab_bundle.py
	$(BIN)/jupyter-book build --all --warningiserror --nitpick --keep-going book
	@echo
	@echo "The book is in $(HTML). Open $(CURDIR)/$(HTML)/index.html in a browser,"
	@echo "or serve it: $(BIN)/python -m http.server -d $(HTML)  (then http://localhost:8000)"

# ---- tests ---------------------------------------------------------------------

test: lint kernel-check unit nbval book browser
	@echo "make test: all checks passed"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy tools benchmarks

# Everything under tests/ except the browser test.
unit: $(INSTALLED)
	$(BIN)/pytest -m "not browser" tests

nbval: $(INSTALLED)
	$(BIN)/pytest $(NBVAL) notebooks

# The browser tests: the built book (tests/test_book_browser.py) and a chapter's
# live widgets in a JupyterLab the test starts on 127.0.0.1 (tests/test_lab_live.py).
browser: $(INSTALLED) chromium book
	$(BIN)/pytest -m browser tests

# The browser test drives Debian's chromium. Install it when we can (root with
# apt); otherwise say how, and the browser test skips itself (fails under CI=true).
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium for the browser test"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
	  echo "NOTE: $(CHROMIUM) not found, so the browser test will be skipped."; \
	  echo "      Install it with:  sudo apt-get install chromium  (Debian/Ubuntu)"; \
	  echo "      or point CHROMIUM=/path/to/chromium at another Chromium build."; \
	fi

# ---- the model against the real kernel (anonlib/kernelcheck, tools/kernelcheck) --------
# One QEMU boot of Debian's Linux 6.12 runs every scenario in scenarios/ and the probes
# (scheme mainline), then one boot of Debian 12's Linux 6.1 the same (scheme lts-6.1).
# As root it installs QEMU and downloads the kernel into .cache/kernel/ on first use;
# elsewhere it says how and skips, except under CI=true, where it must run.
.PHONY: kernel-check
kernel-check: $(INSTALLED)
	$(BIN)/python -m anonlib kernel-check --all --skip-unavailable tools/kernelcheck/probes/*.scn
	$(BIN)/python -m anonlib kernel-check --kernel 6.1 --all --skip-unavailable tools/kernelcheck/probes/*.scn

# The kernel's own selftests (cow, gup_longterm) built from the 6.12 source, run in the
# same VM, each case compared with the scenario of scenarios/cow/ that mirrors it. The
# build is cached in .cache/kernel/selftests/; a run is about a minute (the first one
# installs linux-source-6.12, the kernel's headers and liburing-dev as root).
.PHONY: selftests-check
selftests-check: $(INSTALLED)
	$(BIN)/python -m anonlib selftests-check --skip-unavailable

# ---- notebooks -----------------------------------------------------------------

lab: $(INSTALLED)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

# Re-execute every notebook in place to refresh its stored outputs (what nbval
# compares and the book shows), then strip volatile metadata.
notebooks: $(INSTALLED)
	PYTHONHASHSEED=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=600 \
	  $(NOTEBOOKS)
	$(BIN)/python tools/clean_notebooks.py $(NOTEBOOKS)
	$(BIN)/python tools/list_external_links.py

# Every external link of the book, listed on one generated page; a test checks
# that it is up to date and that every link goes to an allowed host.
links: $(INSTALLED)
	$(BIN)/python tools/list_external_links.py

# ---- cleaning ------------------------------------------------------------------

clean:
	rm -rf book/_build $(WIDGETS_STATIC) $(LAB_STATIC)/pyodide $(LAB_STATIC)/anonlib.zip tests/_output .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -path ./.venv -prune -o -path ./node_modules -prune -o \
	  -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules *.egg-info
