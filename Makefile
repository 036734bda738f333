# The two commands of the README. Each creates .venv and installs the project first.
VENV := .venv
PYTHON ?= python3

.PHONY: demo test dev
demo: $(VENV)/installed
	$(VENV)/bin/xata-migration demo

test: $(VENV)/installed
	sh xata_migration_tests/install_browser.sh
	sh xata_migration_tests/install_postgresql15.sh
	sh xata_migration_tests/install_redis.sh
	$(VENV)/bin/pytest -n 2

dev: $(VENV)/installed
	$(VENV)/bin/xata-migration dev

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@
