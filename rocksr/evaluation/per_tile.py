"""Per-tile metrics: every prediction store against the ground-truth SEM of the test split.

:func:`per_tile_metrics` gives one row per (model, test tile), in the order the stores are
given and then the test order (ascending tile_id): ``model, kind, index`` (position in the test
order), ``tile_id``, the manifest's ``sample, grid_row, grid_col, angle, view``, then ``mse,
psnr, ssim, porosity_pred, porosity_true, s2_distance, chord_distance, spectrum_distance,
porosity_abs_err``. :func:`rocksr.stages.evaluate.evaluate` writes it as
``evaluation/per_tile_metrics.csv`` and aggregates it into Table 1
(:mod:`rocksr.evaluation.table1`).

Metrics are computed on ``uint8 / 255`` images (predictions are stored as uint8), with the
settings of :mod:`rocksr.evaluation.metrics` (PSNR ``L = 1``; SSIM Gaussian sigma 1.5, 11x11
window, population covariance, K1 0.01, K2 0.03, unless ``ssim_opts`` says otherwise). A PSNR
of ``inf`` (prediction identical to the truth) stays ``inf`` here (written as ``inf`` in the
CSV); Table 1 counts it and leaves it out of the PSNR mean and std.

Porosity: pore fraction = share of pixels ``<= porosity_threshold`` (on [0, 1]) in the predicted
and the true SEM. The stage's default threshold is Otsu's threshold of the pooled histogram of
the train-split ground-truth SEM tiles (:func:`otsu_sem_threshold`), so the threshold is fixed
before looking at any test tile. The pore masks at that threshold also give the two-point
correlation (S2, lags up to ``S2_MAX_R`` px) and chord-length distances
(:func:`rocksr.evaluation.rock_metrics.compare_rock_statistics`); the power-spectrum distance
(:func:`rocksr.evaluation.spectrum.spectrum_distance`) needs no threshold.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rocksr.data.predstore import (
    StoreSpec,
    grey_histogram,
    iter_tiles,
    open_predictions,
    store_spec,
)
from rocksr.data.splits import split_tile_ids
from rocksr.evaluation import metrics as M
from rocksr.evaluation.rock_metrics import compare_rock_statistics
from rocksr.evaluation.spectrum import spectrum_distance
from rocksr.files import read_table

# manifest columns copied into the per-tile table, after tile_id (those the manifest has)
_MANIFEST_COLS = ["sample", "grid_row", "grid_col", "angle", "view"]

# per-tile columns filled tile by tile, in table order (manifest columns go after tile_id)
_METRIC_COLS = (
    "model",
    "kind",
    "index",
    "tile_id",
    "mse",
    "psnr",
    "ssim",
    "porosity_pred",
    "porosity_true",
    "s2_distance",
    "chord_distance",
    "spectrum_distance",
)

#: Largest lag of the two-point correlation compared per tile and in Table 1 (px).
S2_MAX_R = 32


def train_sem_histogram(
    store: str | os.PathLike | Any, splits: str | os.PathLike, batch_size: int = 64
) -> np.ndarray:
    """256-bin grey histogram of the pooled train-split ground-truth SEM (one pass)."""
    from rocksr.data.tilestore import open_tiles

    group = open_tiles(store) if isinstance(store, str | os.PathLike) else store
    return grey_histogram(group, "sem", split_tile_ids(splits, "train"), batch_size)


def otsu_sem_threshold(
    store: str | os.PathLike | Any, splits: str | os.PathLike, batch_size: int = 64
) -> float:
    """Otsu threshold (on [0, 1]) of the pooled train-split ground-truth SEM histogram."""
    return M.otsu_threshold_from_histogram(train_sem_histogram(store, splits, batch_size))


def _read_manifest(manifest: str | os.PathLike | pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The manifest indexed by tile_id, checked to list every test tile."""
    where = "manifest" if isinstance(manifest, pd.DataFrame) else str(manifest)
    man = manifest if isinstance(manifest, pd.DataFrame) else read_table(manifest, "manifest")
    if "tile_id" not in man.columns:
        raise ValueError(f"{where}: manifest has no tile_id column")
    man = man.set_index("tile_id")
    missing = np.setdiff1d(ids, man.index.to_numpy())
    if missing.size:
        raise ValueError(
            f"{where}: manifest lacks {missing.size} test tile(s), e.g. tile_id "
            f"{int(missing[0])}; is it the manifest of this dataset?"
        )
    return man


def per_tile_metrics(
    pred_stores: Mapping[str, StoreSpec],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    manifest: str | os.PathLike | pd.DataFrame,
    porosity_threshold: float,
    *,
    ssim_opts: dict | None = None,
    crop_border: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """The per-tile table (see the module docstring) for every prediction store: a store is a
    path (its array ``pred`` is read) or ``(path, array)`` (e.g. ``mean``)."""
    from rocksr.data.tilestore import open_tiles

    if not pred_stores:
        raise ValueError("evaluate: no prediction stores given")
    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    man = _read_manifest(manifest, ids)
    opened = {}
    for name, value in pred_stores.items():
        path, array = store_spec(value)
        opened[name] = open_predictions(path, expect_tile_ids=ids, array=array)
    sopts = dict(ssim_opts or {})
    cols: dict[str, list] = {k: [] for k in _METRIC_COLS}
    pos = 0
    for _, sel, truth_u8 in iter_tiles(group, "sem", ids, batch_size):
        truth = M.to_unit(truth_u8)
        p_true = np.atleast_1d(M.porosity(truth, porosity_threshold))
        n = len(sel)
        for name, (pred_arr, attrs) in opened.items():
            pred = M.to_unit(np.asarray(pred_arr[pos : pos + n]))
            cols["model"] += [name] * n
            cols["kind"] += [attrs.get("kind", "")] * n
            cols["index"] += list(range(pos, pos + n))
            cols["tile_id"] += [int(i) for i in sel]
            cols["mse"] += list(np.atleast_1d(M.mse(pred, truth, crop_border=crop_border)))
            cols["psnr"] += list(np.atleast_1d(M.psnr(pred, truth, crop_border=crop_border)))
            cols["ssim"] += list(
                np.atleast_1d(M.ssim(pred, truth, crop_border=crop_border, **sopts))
            )
            cols["porosity_pred"] += list(np.atleast_1d(M.porosity(pred, porosity_threshold)))
            cols["porosity_true"] += list(p_true)
            rock = compare_rock_statistics(
                np.asarray(pred_arr[pos : pos + n]),
                truth_u8,
                porosity_threshold,
                max_r=min(S2_MAX_R, min(truth_u8.shape[-2:]) - 1),
            )
            cols["s2_distance"] += list(np.atleast_1d(rock["s2_distance"]))
            cols["chord_distance"] += list(np.atleast_1d(rock["chord_distance"]))
            cols["spectrum_distance"] += list(np.atleast_1d(spectrum_distance(pred, truth)))
        pos += n
    df = pd.DataFrame(cols)
    df["porosity_abs_err"] = (df["porosity_pred"] - df["porosity_true"]).abs()
    extra = [c for c in _MANIFEST_COLS if c in man.columns]
    info = man.loc[df["tile_id"].to_numpy(), extra].reset_index(drop=True)
    df = pd.concat([df.iloc[:, :4], info, df.iloc[:, 4:]], axis=1)
    return df
