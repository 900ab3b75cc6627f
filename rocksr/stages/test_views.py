"""Stage `test_views`: the split table that evaluation reads, with at most
``evaluate.test_views`` test views.

Predicting every test view of a large test split buys little: the views of one location at
eight angles are nearly the same image. Training reads ``splits.csv``; every evaluation rule
(predict, the baselines, evaluate, the figures) reads this table, so changing the limit
re-runs evaluation only.
"""

from __future__ import annotations

import argparse

from rocksr.stages.args import positive_int

COMMAND = "test-views"
HELP = "the split table for evaluation: at most N test views, spread evenly"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--splits", required=True, help="the split stage's splits.csv")
    s.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="at most this many test views (default: all)",
    )
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import logging

    import pandas as pd

    from rocksr.data.splits import limit_test_views, split_tile_ids
    from rocksr.files import write_table

    splits = pd.read_csv(a.splits)
    before = split_tile_ids(splits, "test", allow_empty=True).size
    out = limit_test_views(splits, a.limit)
    after = split_tile_ids(out, "test", allow_empty=True).size
    logging.getLogger(__name__).info(
        "%s: %d of %d test views kept for evaluation", a.splits, after, before
    )
    write_table(out, a.out)
