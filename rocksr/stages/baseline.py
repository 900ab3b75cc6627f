"""Stage `baseline`: identity, train-fitted histogram matching and train mean-grey predictions."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import numpy as np

from rocksr.config.choices import BASELINE_KIND
from rocksr.data.predstore import iter_tiles, write_prediction_store
from rocksr.data.splits import split_tile_ids
from rocksr.evaluation.baselines import (
    BASELINES,
    apply_lut,
    fit_histmatch_lut,
    fit_mean_grey,
    save_lut,
)
from rocksr.files import recorded_path


def predict_baseline(
    name: str,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_zarr: str | os.PathLike,
    lut_path: str | os.PathLike | None = None,
    *,
    batch_size: int = 64,
    split: str = "test",
) -> None:
    """Write the ``name`` baseline's predictions for every ``split`` tile to ``out_zarr``.

    ``histmatch`` always fits its LUT on the train split of ``store`` (cheap: one histogram
    pass) and, when ``lut_path`` is given, writes it there as JSON for the record.  ``mean``
    fits its grey level on the train split the same way and records it (and how it was fitted)
    in the store's attrs (``mean_grey``, ``fit``).
    """
    from rocksr.data.tilestore import open_tiles

    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r} (one of {BASELINES})")
    from rocksr.outputs import check_store_target

    check_store_target(out_zarr)  # refuse a foreign output before any work
    group = open_tiles(store)
    ids = split_tile_ids(splits, split)
    size = int(group["mct"].shape[-1])
    lut: np.ndarray | None = None
    const: int | None = None
    attrs: dict = {
        "model": name,
        "kind": BASELINE_KIND,
        "sampler": None,
        "steps": None,
        "seed": None,
        "checkpoint": None,
        "checkpoint_sha256": None,
        "dataset": recorded_path(store),
        "split": split,
    }
    if name == "histmatch":
        lut, meta = fit_histmatch_lut(store, splits)
        if lut_path is not None:
            save_lut(lut, lut_path, meta)
        attrs["lut"] = [int(v) for v in lut]
        attrs["lut_path"] = None if lut_path is None else recorded_path(lut_path)
    elif name == "mean":
        const, meta = fit_mean_grey(store, splits, batch_size)
        attrs["mean_grey"] = const
        attrs["fit"] = meta

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if const is not None:  # no need to read the micro-CT
            for start in range(0, len(ids), batch_size):
                sel = ids[start : start + batch_size]
                yield sel, np.full((len(sel), size, size), const, dtype=np.uint8)
            return
        for _, sel, ct in iter_tiles(group, "mct", ids, batch_size):
            yield sel, (ct if lut is None else apply_lut(ct, lut))

    write_prediction_store(out_zarr, ids, size, batches(), attrs)


COMMAND = "baseline"
HELP = "identity / train-fitted histogram-matching / train mean-grey predictions"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--name", required=True, choices=["identity", "histmatch", "mean"])
    s.add_argument("--store", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--lut", default=None, help="where to record the fitted LUT (histmatch)")


def run(a: argparse.Namespace) -> None:
    predict_baseline(a.name, a.store, a.splits, a.out, lut_path=a.lut)
