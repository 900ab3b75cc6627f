# The two commands of the README. Both install rocksr (and its pinned dependencies) first.
PYTHON ?= python3
CORES ?= all
# test files run in parallel, one worker per CPU core (pytest-xdist; a file's tests stay on one
# worker, so that its module fixtures, e.g. the tiny run, are built once); TEST_WORKERS=0: serial
TEST_WORKERS ?= auto

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --disable-pip-version-check -q -e ".[test]"

demo: install
	$(PYTHON) -m snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint:
	ruff check rocksr tests benchmarks
	snakefmt --check Snakefile workflow
	$(PYTHON) -m snakemake --lint
