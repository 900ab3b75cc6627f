"""Stage `gather-enhance`: the parts of `enhance --shard i/n` -> one enhanced stack."""

from __future__ import annotations

import argparse

COMMAND = "gather-enhance"
HELP = "assemble the TIFF parts of `rocksr enhance --shard I/N` into the stack one job writes"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--parts", nargs="+", required=True, metavar="PART_TIF")
    s.add_argument(
        "--part-reports",
        nargs="+",
        required=True,
        metavar="PART_JSON",
        help="the parts' --report files, in the order of --parts",
    )
    s.add_argument("--output", required=True, help=".tif/.tiff or .ome.zarr (a stack)")
    s.add_argument("--report", default=None, help="also write the run's report as JSON")
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output or report that rocksr did not write",
    )


def run(a: argparse.Namespace) -> None:
    from rocksr.enhance.report import report_text
    from rocksr.enhance.shards import gather_enhance

    report = gather_enhance(a.parts, a.part_reports, a.output, a.report, a.overwrite)
    print(report_text(report))
