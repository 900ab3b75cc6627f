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

All write prediction stores in the layout of :mod:`rocksr.predict` (array ``pred``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.predict import grey_histogram, iter_tiles, split_tile_ids, write_prediction_store

BASELINES = ("identity", "histmatch", "mean")

__all__ = [
    "BASELINES",
    "split_histograms",
    "histogram_matching_lut",
    "fit_histmatch_lut",
    "fit_mean_grey",
    "save_lut",
    "load_lut",
    "apply_lut",
    "predict_baseline",
]


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
    from rocksr.store import open_tiles

    group = open_tiles(store)
    train = split_tile_ids(splits, "train")
    h_ct, h_sem = split_histograms(group, train)
    meta = {
        "method": "histogram matching, mid-rank source quantile -> smallest SEM level",
        "fitted_on": "train",
        "n_tiles": int(len(train)),
        "train_tile_ids_sha256": _ids_digest(train),
        "dataset": str(store),
    }
    return histogram_matching_lut(h_ct, h_sem), meta


def fit_mean_grey(
    store: str | os.PathLike, splits: str | os.PathLike, batch_size: int = 64
) -> tuple[int, dict]:
    """(uint8 grey level, metadata): the mean SEM grey of every pixel of the train split of
    ``store``, rounded half up; the tiles are streamed ``batch_size`` at a time."""
    from rocksr.store import open_tiles

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
        "dataset": str(store),
    }
    return value, meta


def save_lut(lut: np.ndarray, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write the LUT as JSON ``{"lut": [256 ints], ...meta}`` (atomically)."""
    lut = np.asarray(lut)
    if lut.shape != (256,):
        raise ValueError(f"LUT must have 256 entries, got shape {lut.shape}")
    from rocksr.store import write_text

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
    from rocksr.store import open_tiles

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
        "kind": "baseline",
        "sampler": None,
        "steps": None,
        "seed": None,
        "checkpoint": None,
        "checkpoint_sha256": None,
        "dataset": str(store),
        "split": split,
    }
    if name == "histmatch":
        lut, meta = fit_histmatch_lut(store, splits)
        if lut_path is not None:
            save_lut(lut, lut_path, meta)
        attrs["lut"] = [int(v) for v in lut]
        attrs["lut_path"] = None if lut_path is None else str(lut_path)
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
