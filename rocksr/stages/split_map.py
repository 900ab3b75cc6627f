"""Stage `split_map`: where the train/val/test tiles lie on each sample."""

from __future__ import annotations

import argparse

COMMAND = "split-map"
HELP = "map of the split's tile footprints per sample"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--manifest", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import pandas as pd

    from rocksr.data.tilestore import read_manifest
    from rocksr.figures.split_map import split_map_figure

    split_map_figure(read_manifest(a.manifest), pd.read_csv(a.splits), a.out)
