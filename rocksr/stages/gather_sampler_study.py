"""Stage `gather-sampler-study`: the parts of `sampler-study --shard i/n` -> the study's outputs,
the same as one job's (results CSV byte for byte; the timings are the shard jobs' own)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

COMMAND = "gather-sampler-study"
HELP = "assemble the parts of `rocksr sampler-study --shard I/N` into the sampler study"


def read_parts(parts: Sequence[str | os.PathLike]):
    """The rows of the ``n`` parts (each shard exactly once, else a ValueError naming what is
    missing or given twice) in the order of the study's configurations, without the shard and
    position columns."""
    import pandas as pd

    from rocksr.data.predshards import shard_set_problems
    from rocksr.evaluation.sampler_study import CONFIG_POSITION
    from rocksr.files import read_table
    from rocksr.stages.sampler_study import SHARD_COLUMN

    labelled = []
    for path in parts:
        # text columns as text (a one-tile study's tile_ids "7" is not a number); pandas reads
        # floats back exactly, so the gathered CSV is one job's byte for byte (tested)
        text = {"sampler": str, "tile_ids": str, "device": str, SHARD_COLUMN: str}
        df = read_table(path, "sampler study part", dtype=text)
        if SHARD_COLUMN not in df.columns:
            raise ValueError(f"{path}: not a sampler study part (no {SHARD_COLUMN!r} column)")
        # an empty part (more shards than configurations) names its shard in its file name
        label = df[SHARD_COLUMN].iloc[0] if len(df) else _label_of(path)
        index, count = (int(v) for v in label.split("/"))
        labelled.append((index, count, df.drop(columns=SHARD_COLUMN)))
    counts = sorted({count for _, count, _ in labelled})
    if len(counts) != 1:
        raise ValueError(f"parts of different shard counts: {counts}")
    what = shard_set_problems([index for index, _, _ in labelled], counts[0])
    if what:
        raise ValueError(f"cannot gather {len(labelled)} sampler study parts: {', '.join(what)}")
    frames = {index: df for index, _, df in labelled}
    rows = [frames[i] for i in sorted(frames) if len(frames[i])]
    if not rows:
        raise ValueError("the parts hold no rows")
    df = pd.concat(rows, ignore_index=True)
    positions = df[CONFIG_POSITION].tolist()
    if sorted(positions) != list(range(len(df))):
        raise ValueError(f"the parts' configurations do not add up to one study: {positions}")
    # back in the order of the study's configurations
    return df.sort_values(CONFIG_POSITION).drop(columns=CONFIG_POSITION).reset_index(drop=True)


def _label_of(path: str | os.PathLike) -> str:
    """``i/n`` from a part's file name ``<i>-of-<n>.csv``."""
    name = os.path.basename(path).removesuffix(".csv")
    index, sep, count = name.partition("-of-")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ValueError(f"{path}: an empty part must be named <i>-of-<n>.csv")
    return f"{index}/{count}"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--parts", nargs="+", required=True, metavar="PART_CSV")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-timing", default=None)
    s.add_argument("--out-png", required=True)
    s.add_argument("--out-md", default=None)
    s.add_argument("--tolerance-db", type=float, default=0.3)


def run(a: argparse.Namespace) -> None:
    from rocksr.stages.sampler_study import write_sampler_study

    write_sampler_study(
        read_parts(a.parts), a.out_csv, a.out_png, a.out_md, a.tolerance_db, a.out_timing
    )
