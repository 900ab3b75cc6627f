"""Command-line interface: one sub-command per pipeline stage (Snakemake rules call these).

Each command is declared once, in its stage module (:mod:`rocksr.stages`): ``COMMAND``,
``HELP``, ``add_arguments(parser)`` and ``run(args)``, so the parser sits beside its handler.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from rocksr import __version__
from rocksr.stages import (
    baseline,
    budget,
    build_dataset,
    compare_runs,
    enhance,
    enhance_figure,
    evaluate,
    example_data,
    figure1,
    figures,
    gather_enhance,
    gather_predictions,
    gather_sampler_study,
    histograms,
    leak_study,
    loss_curve,
    normalize,
    perception_figure,
    predict,
    rock_figure,
    sampler_study,
    seam_study,
    simulate_mct,
    split,
    split_map,
    synthesize,
    test_views,
    train,
    uncertainty_figure,
    verify,
)

STAGES: tuple[ModuleType, ...] = (
    synthesize,
    example_data,
    simulate_mct,
    normalize,
    histograms,
    build_dataset,
    split,
    split_map,
    test_views,
    figure1,
    train,
    loss_curve,
    predict,
    gather_predictions,
    baseline,
    budget,
    evaluate,
    perception_figure,
    figures,
    uncertainty_figure,
    rock_figure,
    sampler_study,
    gather_sampler_study,
    leak_study,
    enhance,
    gather_enhance,
    seam_study,
    enhance_figure,
    verify,
    compare_runs,
)
COMMANDS: dict[str, ModuleType] = {m.COMMAND: m for m in STAGES}


def build_parser() -> argparse.ArgumentParser:
    """The ``rocksr`` argument parser (sub-commands mirror the Snakemake rules)."""
    p = argparse.ArgumentParser(prog="rocksr", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"rocksr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        stage.add_arguments(sub.add_parser(stage.COMMAND, help=stage.HELP))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rocksr`` console script (``argv`` None: ``sys.argv``, and the process
    dies with its parent, see :mod:`rocksr.lifecycle`)."""
    args = build_parser().parse_args(argv)
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
        COMMANDS[args.command].run(args)
    except (RocksrError, ValueError) as exc:
        print(f"rocksr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
