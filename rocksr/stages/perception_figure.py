"""Stage `perception_figure`: every Table 1 row in the perception-distortion plane."""

from __future__ import annotations

import argparse

COMMAND = "perception-figure"
HELP = "PSNR and SSIM against the power-spectrum distance of every Table 1 row"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--table", required=True, help="table1.csv")
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import pandas as pd

    from rocksr.figures.perception_figure import plot_perception_distortion

    plot_perception_distortion(pd.read_csv(a.table), a.out)
