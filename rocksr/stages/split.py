"""Stage `split`: assign every tile view to train/val/test, location-disjoint."""

from __future__ import annotations

import argparse
import logging
import os

import pandas as pd

from rocksr.config.dataset import Split
from rocksr.config.merge import resolve
from rocksr.config_checks import check_fractions
from rocksr.data.splits import EXCLUDED_WARN_FRACTION, leakage, make_splits, split_counts
from rocksr.data.tilestore import read_manifest
from rocksr.files import write_table
from rocksr.stages.args import json_arg

log = logging.getLogger(__name__)


def split_dataset(
    manifest_path: str | os.PathLike,
    out_splits: str | os.PathLike,
    out_counts: str | os.PathLike,
    params: dict,
) -> pd.DataFrame:
    """Assign every view to a split, check location-disjointness, write table and counts."""
    manifest = read_manifest(manifest_path)
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
    counts = split_counts(manifest, splits)
    counts["shared_footprint_pixels"] = shared
    for name in ("train", "val", "test"):
        if counts.loc[counts["split"] == name, "views"].item() == 0 and fractions.get(name, 0) > 0:
            log.warning("split %s is empty; use more/larger blocks or a larger image", name)
    kept = int(counts.loc[counts["split"] != "excluded", "views"].sum())
    if kept < EXCLUDED_WARN_FRACTION * len(manifest):
        per = ", ".join(
            f"{r.split} {r.views}" for r in counts.itertuples() if r.split != "excluded"
        )
        log.warning(
            "split keeps only %d of %d views (%s); the rest straddle block borders: use fewer "
            "split blocks (split.blocks rows/cols) or smaller tiles",
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
    s.add_argument("--params", type=json_arg, default={})
    s.add_argument("--out-splits", required=True)
    s.add_argument("--out-counts", required=True)


def run(a: argparse.Namespace) -> None:
    split_dataset(a.manifest, a.out_splits, a.out_counts, a.params)
