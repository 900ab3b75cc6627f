# The two commands of the README. Both install rocksr (and its pinned dependencies) first.
PYTHON ?= python3
CORES ?= all
# tests run in parallel, one worker per CPU core (pytest-xdist): each test goes to the next free
# worker, except those of a group (`xdist_group`: the tiny end-to-end run's tests, the SLURM
# cluster's), which stay on one worker, so that the two run side by side; TEST_WORKERS=0: serial;
# the ten slowest tests are printed at the end (pyproject.toml's addopts)
TEST_WORKERS ?= auto

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --disable-pip-version-check -q -e ".[test]"

demo: install
	$(PYTHON) -m snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint:
	ruff check rocksr tests benchmarks
	snakefmt --check Snakefile workflow
	$(PYTHON) -m snakemake --lint
