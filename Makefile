# make demo: set up .venv and run the quickstart notebook end to end on the embedded store.
# make test: set up .venv with the test extras and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STORE ?= $(CURDIR)/nbtrack-runs
DEMO_EPOCHS ?= 5

.PHONY: demo test install install-dev system-deps lint clean bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed-all $@

install: $(VENV)/.installed-all
install-dev: $(VENV)/.installed-dev

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline); the
# PostgreSQL store tests start a throwaway cluster with initdb (tests/pg_server.py).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "make test needs Chromium: sudo apt-get install chromium" >&2; exit 1; fi; }
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
		else echo "make test needs PostgreSQL (initdb): sudo apt-get install postgresql" >&2; exit 1; fi; }

demo: install
	NBTRACK_STORE=$(STORE) NBTRACK_DEMO_EPOCHS=$(DEMO_EPOCHS) \
		$(PY) -m nbtrack.reports.execute notebooks/01_quickstart.ipynb -o build/01_quickstart.ipynb
	$(VENV)/bin/nbtrack --store $(STORE) show latest
	$(VENV)/bin/nbtrack --store $(STORE) report build/01_quickstart.ipynb -o build/01_quickstart.report.html

# pytest exits 5 when it collected no test: that is a failure too.
test: install-dev system-deps
	@command -v node >/dev/null 2>&1 || { echo "make test needs Node.js for the js/ tests: apt-get install nodejs" >&2; exit 1; }
	cd js && node --test test/
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

# make bench: .venv-bench with every extra and the peers (nbtrack[all,bench]), then every benchmark -> benchmarks/RESULTS.md (~45 min).
bench:
	@test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e '.[all,bench]'
	.venv-bench/bin/python benchmarks/run_all.py $(BENCH_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check nbtrack tests benchmarks
	$(VENV)/bin/ruff format --check nbtrack tests benchmarks

clean:
	rm -rf build .pytest_cache nbtrack-runs
