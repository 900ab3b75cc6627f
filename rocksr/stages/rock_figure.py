"""Stage `rock_figure`: S2(r) and chord-length distributions of every model against the truth."""

from __future__ import annotations

import argparse

from rocksr.stages.args import json_arg, named_paths

COMMAND = "rock-figure"
HELP = "pore-phase S2(r) and chord lengths of each model's test predictions vs. the SEM"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--predictions", nargs="+", required=True, metavar="NAME=STORE")
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--porosity-threshold", type=json_arg, default=None)
    s.add_argument("--max-r", type=int, default=32)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import numpy as np

    from rocksr.data.predstore import open_predictions, read_tiles
    from rocksr.data.splits import split_tile_ids
    from rocksr.data.tilestore import open_tiles
    from rocksr.evaluation.per_tile import otsu_sem_threshold
    from rocksr.evaluation.rock_metrics import rock_statistics
    from rocksr.figures.rock_figure import rock_figure

    group = open_tiles(a.store)
    ids = split_tile_ids(a.splits, "test")
    thr = (
        otsu_sem_threshold(group, a.splits)
        if a.porosity_threshold is None
        else float(a.porosity_threshold)
    )
    truth = read_tiles(group, "sem", ids)
    max_r = min(a.max_r, truth.shape[-1] - 1)
    stats = {"SEM (truth)": rock_statistics(truth, thr, max_r)}
    for name, path in named_paths(a.predictions).items():
        arr, _ = open_predictions(path, expect_tile_ids=ids)
        stats[name] = rock_statistics(np.asarray(arr[:]), thr, max_r)
    title = f"pore phase (grey ≤ {thr:.3f}) on {len(ids)} test tiles"
    rock_figure(stats, title, a.out)
