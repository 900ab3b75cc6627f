"""Command `compare-runs`: what differs between the results of two runs (no rule; for people
checking that a change leaves results alone, docs/development.md)."""

from __future__ import annotations

import argparse
import sys

COMMAND = "compare-runs"
HELP = "compare two results folders (arrays, weights, tables, images), timings left out"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("first", help="a results folder, e.g. before/results/demo")
    s.add_argument("second", help="the same run of the other version or folder")
    s.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="FIRST=SECOND",
        help="a result that moved: its path in the first run = its path in the second",
    )
    s.add_argument(
        "--only-differences", action="store_true", help="print only what differs or is missing"
    )


def run(a: argparse.Namespace) -> None:
    from rocksr.run_diff import compare_runs

    aliases = {}
    for given in a.alias:
        first, sep, second = given.partition("=")
        if not sep or not first or not second:
            raise ValueError(f"--alias {given!r}: give FIRST=SECOND (two relative paths)")
        aliases[first] = second
    found = compare_runs(a.first, a.second, aliases)
    for f in found:
        if f.same is not True or not a.only_differences:
            print(f.line())
    differ = sum(f.same is False for f in found)
    alone = sum(f.same is None for f in found)
    print(f"{len(found)} results: {differ} differ, {alone} in one run only")
    if differ or alone:
        sys.exit(1)
