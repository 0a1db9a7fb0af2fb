# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATIC := licensing/static
GOVUK := node_modules/govuk-frontend/dist/govuk
LEAFLET := node_modules/leaflet/dist
HOST ?= 127.0.0.1
# Two workers: the machines here have two cores. Override: make test PYTEST_ARGS=
PYTEST_ARGS ?= -n 2
PORT ?= 5000

.PHONY: run scheduler serve setup assets migrate demo test test-postgres lint format typecheck security clean screenshots bench

setup: $(VENV)/.installed assets

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# GOV.UK Frontend comes from the npm registry at set-up time; the copies are not committed.
# They are served under /assets, where the compiled CSS expects its fonts and images.
# Leaflet (the map) comes the same way and is served under /assets/leaflet.
assets: $(STATIC)/govuk-frontend.min.css $(STATIC)/leaflet/leaflet.js

$(STATIC)/govuk-frontend.min.css: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	cp $(GOVUK)/govuk-frontend.min.css $(GOVUK)/govuk-frontend.min.js $(STATIC)/
	cp -r $(GOVUK)/assets/. $(STATIC)/
	touch $@

# After the npm ci above (which re-runs whenever package.json or the lock changes).
$(STATIC)/leaflet/leaflet.js: $(STATIC)/govuk-frontend.min.css package.json package-lock.json
	mkdir -p $(STATIC)/leaflet
	cp $(LEAFLET)/leaflet.js $(LEAFLET)/leaflet.css $(STATIC)/leaflet/
	cp -r $(LEAFLET)/images $(STATIC)/leaflet/
	touch $@

migrate: setup
	$(BIN)/licensing db upgrade

demo: migrate
	$(BIN)/licensing demo load --if-empty

# The web app and the scheduler (alerts and email) together; stopping make stops both.
# Email goes to SMTP_HOST:SMTP_PORT (default localhost:1025): for a local test server,
# run `.venv/bin/python -m aiosmtpd -n -l 127.0.0.1:1025` in another terminal.
run: demo
	@$(BIN)/licensing scheduler run & scheduler=$$!; \
	trap 'kill $$scheduler 2>/dev/null; wait $$scheduler 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

# The web app under gunicorn (gunicorn.conf.py: WEB_CONCURRENCY workers, JSON logs with
# LOG_FORMAT=json), as each web node runs it in production; the scheduler runs apart.
serve: migrate
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The scheduler alone, in the foreground (one is active; a second waits as a standby).
scheduler: migrate
	$(BIN)/licensing scheduler run

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The same suite against PostgreSQL: the harness creates its own database and drops it.
test-postgres: setup
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres} $(BIN)/pytest -q $(PYTEST_ARGS)

# Every benchmark in benchmarks/ on SQLite, and on PostgreSQL too when DATABASE_URL names
# it; one table in benchmarks/results.json and benchmarks/RESULTS.md. The large data set is
# built once and cached (instance/bench/, template database licensing_bench_large_2026).
bench: setup
	$(BIN)/python benchmarks/run_all.py

# README screenshots of the demo in Debian's Chromium (docs/screenshots/*.png).
screenshots: setup
	$(BIN)/python scripts/screenshots.py

# Static security checks of our code (bandit, medium severity and up). pip-audit needs a
# vulnerability database (PyPI's JSON API or OSV) that this build network cannot reach;
# run `pip-audit -r constraints.txt` where it can.
security: setup
	$(BIN)/bandit -q -r licensing -ll

lint: setup
	$(BIN)/ruff check licensing tests migrations $(wildcard benchmarks) scripts config.py wsgi.py
	$(BIN)/ruff format --check licensing tests migrations scripts config.py wsgi.py

format: setup
	$(BIN)/ruff format licensing tests migrations config.py wsgi.py
	$(BIN)/ruff check --fix licensing tests migrations config.py wsgi.py

typecheck: setup
	$(BIN)/mypy licensing

clean:
	rm -rf $(VENV) node_modules $(STATIC)/govuk-frontend.min.* $(STATIC)/fonts $(STATIC)/images $(STATIC)/rebrand $(STATIC)/manifest.json $(STATIC)/leaflet .pytest_cache .mypy_cache .ruff_cache
