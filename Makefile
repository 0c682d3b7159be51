# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: install, migrate and start the whole system in one process on a demo organization
## (embedded: SQLite, no Redis); `newsmon run` starts it without the demo
run: install
	$(BIN)/newsmon db upgrade
	$(BIN)/newsmon demo

## lint: ruff and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

## browser: Debian's chromium and chromium-driver (apt-get, as root or with sudo), for the
## operator page's browser test; `make test` skips that test without them (CI fails instead)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver)

## test: install, lint, then the whole suite against the real PostgreSQL and Redis, in
## parallel processes (one per CPU, at most 4; each has its own database and Redis index)
test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n 4 --dist worksteal

## bench: the benchmarks (print figures and ratios)
bench: install
	$(BIN)/python -m bench.scheduler

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
