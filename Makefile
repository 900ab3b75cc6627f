# The two commands of the README. Both install rocksr (and its pinned dependencies) first.
PYTHON ?= python3
CORES ?= all

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --disable-pip-version-check -q -e ".[test]"

demo: install
	$(PYTHON) -m snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q

lint:
	ruff check rocksr tests benchmarks
	snakefmt --check Snakefile workflow
	$(PYTHON) -m snakemake --lint
