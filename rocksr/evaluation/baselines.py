"""Baselines that every table carries (DESIGN §5): a model that does not beat them learnt nothing.

* ``identity``: the normalized micro-CT tile itself, as the SEM prediction.
* ``histmatch``: a global monotone grey-level mapping micro-CT -> SEM, fitted on the TRAIN split
  only.  With ``F_ct``/``F_sem`` the pooled CDFs of the 8-bit train tiles, grey level ``v`` maps
  to the smallest SEM level ``s`` with ``F_sem(s) >= F_ct(v) - p_ct(v) / 2`` (the mid-rank of
  ``v``, so a level holding a big share of pixels maps to the middle of its quantile range).
  Both CDFs are non-decreasing, so the LUT is monotone non-decreasing by construction.
* ``mean``: every pixel of every tile is the mean SEM grey level of the TRAIN split (all pixels
  of all train tiles, streamed; exact integer sums), rounded half up to uint8.  The image that
  knows nothing about the micro-CT: a model below it on PSNR or SSIM is no better than
  predicting a constant.

All write prediction stores in the layout of :mod:`rocksr.data.predstore` (array ``pred``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.data.predstore import grey_histogram
from rocksr.data.splits import split_tile_ids
from rocksr.files import recorded_path

BASELINES = ("identity", "histmatch", "mean")


def split_histograms(
    group: Any, ids: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """256-bin pixel counts (int64) of ``mct`` and ``sem`` over the tiles ``ids`` (streamed)."""
    return (
        grey_histogram(group, "mct", ids, batch_size),
        grey_histogram(group, "sem", ids, batch_size),
    )


def histogram_matching_lut(hist_src: np.ndarray, hist_ref: np.ndarray) -> np.ndarray:
    """uint8 LUT (256,) mapping source grey levels onto the reference distribution (monotone)."""
    hs = np.asarray(hist_src, dtype=np.float64)
    hr = np.asarray(hist_ref, dtype=np.float64)
    if hs.shape != (256,) or hr.shape != (256,) or hs.sum() <= 0 or hr.sum() <= 0:
        raise ValueError("histogram_matching_lut: need two non-empty 256-bin histograms")
    p_src = hs / hs.sum()
    cdf_src = np.cumsum(p_src)
    cdf_ref = np.cumsum(hr / hr.sum())
    cdf_ref[-1] = 1.0
    q = cdf_src - 0.5 * p_src  # mid-rank of each source level
    lut = np.searchsorted(cdf_ref, q, side="left")
    return np.clip(lut, 0, 255).astype(np.uint8)


def _ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()


def fit_histmatch_lut(
    store: str | os.PathLike, splits: str | os.PathLike
) -> tuple[np.ndarray, dict]:
    """(LUT, metadata) fitted on the train split of ``store`` only."""
    from rocksr.data.tilestore import open_tiles

    group = open_tiles(store)
    train = split_tile_ids(splits, "train")
    h_ct, h_sem = split_histograms(group, train)
    meta = {
        "method": "histogram matching, mid-rank source quantile -> smallest SEM level",
        "fitted_on": "train",
        "n_tiles": int(len(train)),
        "train_tile_ids_sha256": _ids_digest(train),
        "dataset": recorded_path(store),
    }
    return histogram_matching_lut(h_ct, h_sem), meta


def fit_mean_grey(
    store: str | os.PathLike, splits: str | os.PathLike, batch_size: int = 64
) -> tuple[int, dict]:
    """(uint8 grey level, metadata): the mean SEM grey of every pixel of the train split of
    ``store``, rounded half up; the tiles are streamed ``batch_size`` at a time."""
    from rocksr.data.tilestore import open_tiles

    group = open_tiles(store)
    train = split_tile_ids(splits, "train")
    hist = grey_histogram(group, "sem", train, batch_size)
    total = int(hist @ np.arange(256, dtype=np.int64))
    count = int(hist.sum())
    if count == 0:
        raise ValueError(f"{store}: the train split has no SEM pixels to average")
    exact = total / count
    value = int(min(255, np.floor(exact + 0.5)))
    meta = {
        "method": "mean SEM grey level of all train-split pixels, rounded half up to uint8",
        "fitted_on": "train",
        "mean_grey": value,
        "mean_grey_exact": float(exact),
        "n_tiles": int(len(train)),
        "n_pixels": int(count),
        "train_tile_ids_sha256": _ids_digest(train),
        "dataset": recorded_path(store),
    }
    return value, meta


def save_lut(lut: np.ndarray, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write the LUT as JSON ``{"lut": [256 ints], ...meta}`` (atomically)."""
    lut = np.asarray(lut)
    if lut.shape != (256,):
        raise ValueError(f"LUT must have 256 entries, got shape {lut.shape}")
    from rocksr.files import write_text

    write_text(json.dumps({**(meta or {}), "lut": [int(v) for v in lut]}, indent=1), path)


def load_lut(path: str | os.PathLike) -> np.ndarray:
    """Read a LUT written by :func:`save_lut` (JSON) or a ``.npy`` array of 256 values."""
    p = Path(path)
    lut = np.load(p) if p.suffix == ".npy" else np.asarray(json.loads(p.read_text())["lut"])
    if lut.shape != (256,) or lut.min() < 0 or lut.max() > 255:
        raise ValueError(f"{p}: not a 256-entry 8-bit LUT")
    return lut.astype(np.uint8)


def apply_lut(tiles: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 tiles -> ``lut[tiles]`` (uint8)."""
    if tiles.dtype != np.uint8:
        raise ValueError(f"apply_lut expects uint8 tiles, got {tiles.dtype}")
    return np.asarray(lut, dtype=np.uint8)[tiles]
