"""Stage `figures`: Figures 2 and 3 and the training curves of every model."""

from __future__ import annotations

import argparse

from rocksr.stages.args import named_paths, positive_int

COMMAND = "figures"
HELP = "Figures 2 and 3 and the training curves"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--predictions", nargs="+", required=True, metavar="NAME=STORE")
    s.add_argument("--models", nargs="+", default=None, help="models shown in Figure 3")
    s.add_argument("--histories", nargs="+", required=True, metavar="NAME=CSV")
    s.add_argument("--per-tile", required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--n-figure2", type=int, default=60)
    s.add_argument("--n-figure3", type=positive_int, default=3, help="tiles in Figure 3")
    s.add_argument("--out-figure2", required=True)
    s.add_argument("--out-figure3", required=True)
    s.add_argument("--out-curves", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.figures.figures import figure2, figure3
    from rocksr.figures.loss_curve import plot_training_curves

    preds = named_paths(a.predictions)
    figure2(a.per_tile, a.out_figure2, n=a.n_figure2)
    figure3(
        preds, a.store, a.splits, a.out_figure3, n_tiles=a.n_figure3, seed=a.seed, models=a.models
    )
    plot_training_curves(named_paths(a.histories), a.out_curves)
