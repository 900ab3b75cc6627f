"""Stage `sampler_study`: PSNR/SSIM/time per DDPM sampler and step count."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from rocksr.config.evaluate import Evaluate
from rocksr.data.predstore import read_tiles
from rocksr.data.splits import split_tile_ids
from rocksr.devices import resolve_device
from rocksr.stages.args import json_arg, positive_int, shard_arg


def sampler_study(
    ckpt: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_csv: str | os.PathLike | None,
    out_png: str | os.PathLike | None = None,
    configs: list[dict] | None = None,
    n_tiles: int = 8,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "auto",
    *,
    out_md: str | os.PathLike | None = None,
    tolerance_db: float = 0.3,
    out_timing: str | os.PathLike | None = None,
    shard: tuple[int, int] | None = None,
    out_part: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run the study for a DDPM checkpoint on ``n_tiles`` seeded test tiles; CSV of the results
    and of the timings (``out_timing``, default ``<out_csv stem>_timing.csv`` beside it; + PNG,
    + Markdown with the cheapest sampler within ``tolerance_db`` of ancestral).

    ``shard = (i, n)``: only the configurations of shard ``i`` of ``n``, their rows written to
    ``out_part`` (every column, and ``shard``); ``gather-sampler-study`` writes the study of the
    ``n`` parts, the same as one job's."""
    from rocksr.data.tilestore import open_tiles
    from rocksr.evaluation.sampler_study import run_sampler_study
    from rocksr.files import write_table
    from rocksr.inference import load_for_inference
    from rocksr.models.registry import get_kind

    if (shard is None) != (out_part is None):
        raise ValueError("--shard and --out-part go together")
    dev = resolve_device(device)
    kind, model, cfg = load_for_inference(ckpt, device=dev)
    if not get_kind(kind).stochastic:
        raise ValueError(
            f"{ckpt}: the sampler study needs a DDPM checkpoint (a model that samples), "
            f"got {kind!r}"
        )
    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    k = min(int(n_tiles), len(ids))
    sel = ids[np.sort(np.random.default_rng(seed).choice(len(ids), size=k, replace=False))]
    mct, sem = read_tiles(group, "mct", sel), read_tiles(group, "sem", sel)
    df = run_sampler_study(
        model, cfg, mct, sem, configs, seed=seed, batch_size=batch_size, device=dev, shard=shard
    )
    df.insert(3, "tile_ids", " ".join(str(int(i)) for i in sel))
    if shard is not None:
        df[SHARD_COLUMN] = f"{shard[0]}/{shard[1]}"
        write_table(df, out_part)
        return df
    return write_sampler_study(df, out_csv, out_png, out_md, tolerance_db, out_timing)


# the column of a shard's part that names it, "i/n"
SHARD_COLUMN = "shard"


def write_sampler_study(
    rows: pd.DataFrame,
    out_csv: str | os.PathLike,
    out_png: str | os.PathLike | None = None,
    out_md: str | os.PathLike | None = None,
    tolerance_db: float = 0.3,
    out_timing: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The study's outputs from its rows (of one job, or gathered): the gaps to ancestral, the
    results CSV and its timing CSV, the Markdown and the figure; returns the table."""
    from rocksr.evaluation.sampler_study import (
        ROW_KEYS,
        TIMING_COLUMNS,
        add_ancestral_gaps,
        sampler_study_markdown,
    )
    from rocksr.figures.sampler_study import plot_sampler_study
    from rocksr.files import write_text
    from rocksr.timing import write_with_timing

    df = add_ancestral_gaps(rows)
    write_with_timing(df, out_csv, TIMING_COLUMNS, ROW_KEYS, out_timing)
    if out_md is not None:
        write_text(sampler_study_markdown(df, tolerance_db), out_md)
    if out_png is not None:
        plot_sampler_study(df, out_png)
    return df


COMMAND = "sampler-study"
HELP = "PSNR/SSIM/time vs. sampler steps (DDPM)"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--configs", type=json_arg, default=None)
    s.add_argument("--n-tiles", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=positive_int, default=Evaluate().batch_size)
    s.add_argument("--device", default="auto")
    s.add_argument("--out-csv", default=None)
    s.add_argument(
        "--shard",
        type=shard_arg,
        default=None,
        metavar="I/N",
        help="only the configurations of shard I of N, written to --out-part; "
        "`rocksr gather-sampler-study` writes the study of the N parts",
    )
    s.add_argument("--out-part", default=None, help="a shard's rows (CSV)")
    s.add_argument(
        "--out-timing",
        default=None,
        help="seconds per image and speed-ups (CSV; default <out-csv stem>_timing.csv)",
    )
    s.add_argument("--out-png", default=None)
    s.add_argument(
        "--out-md",
        default=None,
        help="Markdown table + cheapest sampler within --tolerance-db of ancestral",
    )
    s.add_argument("--tolerance-db", type=float, default=0.3)


def run(a: argparse.Namespace) -> None:
    if a.shard is None and (a.out_csv is None or a.out_png is None):
        raise ValueError("--out-csv and --out-png are needed (or --shard I/N and --out-part)")
    sampler_study(
        a.checkpoint,
        a.store,
        a.splits,
        a.out_csv,
        a.out_png,
        configs=a.configs,
        n_tiles=a.n_tiles,
        seed=a.seed,
        batch_size=a.batch_size,
        device=a.device,
        out_md=a.out_md,
        tolerance_db=a.tolerance_db,
        out_timing=a.out_timing,
        shard=a.shard,
        out_part=a.out_part,
    )
