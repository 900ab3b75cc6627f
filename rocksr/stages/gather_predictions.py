"""Stage `gather-predictions`: the shard stores of `predict --shard i/n` -> one prediction store."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

COMMAND = "gather-predictions"
HELP = "assemble the shard stores of `rocksr predict --shard I/N` into one prediction store"


def sum_benchmarks(paths: Sequence[str | os.PathLike], out: str | os.PathLike) -> None:
    """A benchmark file at ``out`` whose ``s`` is the wall seconds of the shard jobs together
    (what the `budget` rule reads of an unsharded `predict` benchmark)."""
    from rocksr.evaluation.budget import read_benchmark_seconds
    from rocksr.files import write_text

    total = sum(read_benchmark_seconds(p) for p in paths)
    write_text(f"s\n{total:.4f}\n", out)


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--shards", nargs="+", required=True, metavar="SHARD_ZARR")
    s.add_argument("--out", required=True)
    s.add_argument(
        "--benchmarks",
        nargs="*",
        default=[],
        metavar="TSV",
        help="the shard jobs' Snakemake benchmark files: --out-benchmark gets their summed s",
    )
    s.add_argument("--out-benchmark", default=None, metavar="TSV")


def run(a: argparse.Namespace) -> None:
    from rocksr.data.predstore import gather_predictions

    if bool(a.benchmarks) != (a.out_benchmark is not None):
        raise ValueError("--benchmarks and --out-benchmark go together")
    gather_predictions(a.shards, a.out)
    if a.out_benchmark is not None:
        sum_benchmarks(a.benchmarks, a.out_benchmark)
