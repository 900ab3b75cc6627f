"""Command-line interface: one sub-command per pipeline stage (Snakemake rules call these).

Each command is declared once, in its stage module (:mod:`rocksr.stages`): ``COMMAND``,
``HELP``, ``add_arguments(parser)`` and ``run(args)``, so the parser sits beside its handler.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from rocksr import __version__

# The stage modules (rocksr.stages.<module>) in the order `rocksr --help` lists their commands; a
# module's command is its name with dashes (build_dataset -> build-dataset). A command imports
# only its own stage module, so that a job pays only for the libraries its stage uses (a
# `rocksr synthesize` job does not import pandas, scipy.stats or torch).
STAGE_MODULES: tuple[str, ...] = (
    "synthesize",
    "example_data",
    "simulate_mct",
    "normalize",
    "histograms",
    "build_dataset",
    "split",
    "split_map",
    "test_views",
    "figure1",
    "train",
    "loss_curve",
    "predict",
    "gather_predictions",
    "baseline",
    "budget",
    "evaluate",
    "perception_figure",
    "figures",
    "uncertainty_figure",
    "rock_figure",
    "sampler_study",
    "gather_sampler_study",
    "leak_study",
    "enhance",
    "gather_enhance",
    "seam_study",
    "enhance_figure",
    "verify",
    "compare_runs",
)
COMMANDS: dict[str, str] = {m.replace("_", "-"): f"rocksr.stages.{m}" for m in STAGE_MODULES}

# The cyclic garbage collector's first threshold in a `rocksr` process (Python's default: 700
# new container objects). Importing torch and diffusers creates millions of objects and, at 700,
# hundreds of collections that cost 10-25 % of a U-Net job's start-up (0.3-0.9 s of 4-5 s on
# the 2-core machines of docs/benchmarks.md); rocksr's stages make few reference cycles.
GC_FIRST_THRESHOLD = 50_000


def collect_garbage_less_often() -> None:
    """Set this process's first garbage-collector threshold to :data:`GC_FIRST_THRESHOLD`."""
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])


def stage(command: str) -> ModuleType:
    """The stage module of ``command`` (imported on first use)."""
    module = importlib.import_module(COMMANDS[command])
    if module.COMMAND != command:
        raise RuntimeError(f"{module.__name__} declares the command {module.COMMAND!r}")
    return module


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command of ``argv`` (its first argument that is not an option; rocksr's own
    options take no value), or None where there is none or it is not a command."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``rocksr`` argument parser (sub-commands mirror the Snakemake rules): with the
    sub-commands ``commands`` only (None: all of them, for `rocksr --help` and mistakes)."""
    p = argparse.ArgumentParser(prog="rocksr", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"rocksr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS if commands is None else commands:
        module = stage(command)
        module.add_arguments(sub.add_parser(command, help=module.HELP))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rocksr`` console script (``argv`` None: ``sys.argv``, and the process
    dies with its parent, see :mod:`rocksr.lifecycle`)."""
    if argv is None:  # a process of its own (the console script), not a call from Python
        collect_garbage_less_often()
    given = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(given)
    args = build_parser(None if command is None else [command]).parse_args(given)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from rocksr.errors import RocksrError
    from rocksr.lifecycle import die_with_parent, sigterm_as_exit

    try:
        if argv is None:  # the console script (not a call from Python)
            if os.environ.get("ROCKSR_DIE_WITH_PARENT") == "1":  # set by the Snakefile for jobs
                die_with_parent()  # a job killed by its shell takes rocksr with it
            sigterm_as_exit()  # so that SIGTERM removes partial outputs (training has its own)
        stage(args.command).run(args)
    except (RocksrError, ValueError) as exc:
        print(f"rocksr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
