"""Stage `uncertainty_figure`: mean, std and error of K DDPM samples."""

from __future__ import annotations

import argparse

from rocksr.stages.args import positive_int

COMMAND = "uncertainty-figure"
HELP = "DDPM uncertainty figure: mean, std and error of K samples per tile"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--predictions",
        required=True,
        metavar="[NAME=]STORE",
        help="prediction store with n_samples > 1",
    )
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--seed", type=int, default=0, help="tile choice (the Figure 3 seed)")
    s.add_argument("--n-tiles", type=positive_int, default=3)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.figures.uncertainty_figure import uncertainty_figure

    name, sep, path = a.predictions.partition("=")
    if not sep:
        name, path = "ddpm", a.predictions
    if not name or not path:
        raise ValueError(f"expected STORE or NAME=STORE, got {a.predictions!r}")
    uncertainty_figure(path, a.store, a.splits, a.out, n_tiles=a.n_tiles, seed=a.seed, name=name)
