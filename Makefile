# The two commands of the README. Both install rocksr (and its pinned dependencies) first.
PYTHON ?= python3
CORES ?= all
# tests run in parallel, one worker per CPU core (pytest-xdist): each test goes to the next free
# worker, except those of a group (`xdist_group`: the tiny end-to-end run, the SLURM cluster),
# which stay on one worker so that their fixture is built once; TEST_WORKERS=0: serial; the ten
# slowest tests are printed at the end
TEST_WORKERS ?= auto

.PHONY: install demo test lint

install:
	$(PYTHON) -m pip install --disable-pip-version-check -q -e ".[test]"

demo: install
	$(PYTHON) -m snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=10

lint:
	ruff check rocksr tests benchmarks
	snakefmt --check Snakefile workflow
	$(PYTHON) -m snakemake --lint
