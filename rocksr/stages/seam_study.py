"""Stage `seam_study`: tile-border error per model and fusion mode on a crop with ground truth."""

from __future__ import annotations

import argparse

from rocksr.config.choices import SAMPLERS, WINDOWS
from rocksr.config.enhance import Enhance
from rocksr.stages.args import named_paths, positive_int

COMMAND = "seam-study"
HELP = "seam ratio of whole-slice inference per model and fusion mode"


def add_arguments(s: argparse.ArgumentParser) -> None:
    d = Enhance()
    s.add_argument("--checkpoints", nargs="+", required=True, metavar="NAME=CKPT")
    s.add_argument("--mct", required=True, help="normalized (8-bit) micro-CT")
    s.add_argument("--sem", required=True, help="normalized (8-bit) SEM, the truth")
    s.add_argument("--crop", type=positive_int, default=d.seam_crop)
    s.add_argument("--sampler", default="ddim", choices=SAMPLERS)
    s.add_argument("--steps", type=positive_int, default=None)
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    s.add_argument(
        "--window",
        choices=[w for w in WINDOWS if w != "constant"],
        default=d.window,
        help="default: each model kind's own",
    )
    s.add_argument("--device", default="auto")
    s.add_argument(
        "--enhanced",
        nargs="*",
        default=[],
        metavar="NAME=TIF",
        help="whole-slice outputs of the same sample (`enhance` rule): their banding is added",
    )
    s.add_argument("--out-banding", default=None, help="CSV of the banding of --enhanced")
    s.add_argument("--out-csv", required=True)
    s.add_argument(
        "--out-timing", default=None, help="seconds per run (default <out-csv stem>_timing.csv)"
    )
    s.add_argument("--out-md", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.evaluation.seam_study import (
        ROW_KEYS,
        TIMING_COLUMNS,
        banding_markdown,
        banding_table,
        seam_study,
        seam_study_markdown,
    )
    from rocksr.files import write_table, write_text
    from rocksr.timing import write_with_timing

    bands = banding_table(named_paths(a.enhanced), a.mct, a.sem) if a.enhanced else None

    df = seam_study(
        named_paths(a.checkpoints),
        a.mct,
        a.sem,
        crop=a.crop,
        sampler=a.sampler,
        steps=a.steps,
        seed=a.seed,
        batch_size=a.batch_size,
        window=a.window,
        device=a.device,
    )
    write_with_timing(df, a.out_csv, TIMING_COLUMNS, ROW_KEYS, a.out_timing)
    text = seam_study_markdown(df)
    if bands is not None:
        if a.out_banding:
            write_table(bands, a.out_banding)
        text += "\n### Banding of the whole-slice outputs\n\n" + banding_markdown(bands)
    write_text(text, a.out_md)
