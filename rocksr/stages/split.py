"""Stage `split`: assign every tile view to train/val/test, location-disjoint."""

from __future__ import annotations

import argparse
import logging
import os

import pandas as pd

from rocksr.config.merge import resolve
from rocksr.config.split import Split
from rocksr.config_checks import check_fractions
from rocksr.data.splits import EXCLUDED_WARN_FRACTION, leakage, make_splits, split_counts
from rocksr.data.tilestore import read_dropped, read_manifest
from rocksr.errors import RocksrError
from rocksr.files import write_table
from rocksr.stages.args import json_arg

log = logging.getLogger(__name__)


class EmptySplitError(RocksrError, ValueError):
    """A split the config asks for has no views: training or evaluation could not run."""


_ADVICE = {
    "blocks": "a view is kept only if its whole footprint lies in blocks of one split: use "
    "fewer split blocks (split.blocks rows/cols), smaller tiles or a larger image",
    "random": "use larger fractions for the empty splits, or more views (smaller stride)",
    "regions": "a view is kept only if its whole footprint lies in its split's region: use "
    "smaller tiles, a larger image or larger fractions for the empty splits",
    "holdout_sample": "name at least one sample in split.holdout.test (and .val), and leave "
    "at least one for training",
}


def check_not_empty(counts: pd.DataFrame, params: dict, manifest_path: object) -> None:
    """Raise :class:`EmptySplitError` naming the strategy, the counts and what to change when
    a split the config asks for (train always; val and test when their fraction is non-zero,
    or for holdout_sample when samples are held out for them) has no views."""
    strategy = params["strategy"]
    views = dict(zip(counts["split"], counts["views"], strict=True))
    if strategy == "holdout_sample":
        wanted = {"train"} | {s for s in ("val", "test") if params["holdout"].get(s)}
    else:
        wanted = {s for s in ("train", "val", "test") if params["fractions"].get(s, 0) > 0}
    empty = [s for s in ("train", "val", "test") if s in wanted and views.get(s, 0) == 0]
    if empty:
        per = ", ".join(f"{s} {views.get(s, 0)}" for s in ("train", "val", "test", "excluded"))
        raise EmptySplitError(
            f"{manifest_path}: split strategy {strategy!r} leaves {' and '.join(empty)} empty "
            f"(views: {per}); {_ADVICE.get(strategy, 'change split settings')}"
        )


def split_dataset(
    manifest_path: str | os.PathLike,
    out_splits: str | os.PathLike,
    out_counts: str | os.PathLike,
    params: dict,
    dropped_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Assign every view to a split, check location-disjointness, write table and counts (with
    the base tiles the dataset dropped, e.g. outside a mask, from ``dropped_path``)."""
    manifest = read_manifest(manifest_path)
    dropped = None if dropped_path is None else read_dropped(dropped_path)
    params = resolve(Split, params, "split")
    strategy = params["strategy"]
    fractions = params["fractions"]
    if strategy != "holdout_sample":
        check_fractions(fractions)
    splits = make_splits(
        manifest,
        strategy,
        fractions,
        int(params["seed"]),
        blocks=params["blocks"],
        holdout=params["holdout"],
    )
    leak = leakage(manifest, splits)
    shared = int(leak["shared_pixels"].sum())
    if strategy != "random" and shared:
        raise AssertionError(
            f"split strategy {strategy!r} produced {shared} shared footprint pixels"
        )
    if shared:
        log.warning("random split: %d footprint pixels shared between splits (leak)", shared)
    counts = split_counts(manifest, splits, dropped)
    counts["shared_footprint_pixels"] = shared
    check_not_empty(counts, params, manifest_path)
    kept = int(counts.loc[counts["split"].isin(["train", "val", "test"]), "views"].sum())
    if kept < EXCLUDED_WARN_FRACTION * len(manifest):
        per = ", ".join(
            f"{r.split} {r.views}"
            for r in counts.itertuples()
            if r.split in ("train", "val", "test")
        )
        log.warning(
            "split keeps only %d of %d views (%s); the rest straddle split borders: use fewer "
            "split blocks (split.blocks rows/cols), smaller tiles, or split.strategy regions",
            kept,
            len(manifest),
            per,
        )
    write_table(splits, out_splits)
    write_table(counts, out_counts)
    return splits


COMMAND = "split"
HELP = "assign tiles to train/val/test"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--manifest", required=True)
    s.add_argument("--dropped", help="dropped-tiles CSV of build-dataset (counted in --out-counts)")
    s.add_argument("--params", type=json_arg, default={})
    s.add_argument("--out-splits", required=True)
    s.add_argument("--out-counts", required=True)


def run(a: argparse.Namespace) -> None:
    split_dataset(a.manifest, a.out_splits, a.out_counts, a.params, a.dropped)
