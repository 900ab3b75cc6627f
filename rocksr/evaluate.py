"""Per-tile metrics of every model and baseline on the test split, Table 1 and porosity.

Outputs of :func:`evaluate`:

* per-tile CSV: one row per (model, test tile): ``model, kind, index`` (position in the test
  order, ascending tile_id), ``tile_id, sample, grid_row, grid_col, angle, view, mse, psnr, ssim,
  porosity_pred, porosity_true, porosity_abs_err``;
* Table 1 CSV: one row per model/baseline (in the order given): ``model, kind, count, psnr_mean,
  psnr_std, psnr_n_inf, ssim_mean, ssim_std, porosity_abs_err_mean, porosity_abs_err_std,
  porosity_pred_mean, porosity_true_mean, porosity_threshold, sampler, steps``;
* Table 1 Markdown: the same means +- std with a note on how the numbers were made.

Metrics are computed on ``uint8 / 255`` images (predictions are stored as uint8), with the
settings of :mod:`rocksr.metrics` (PSNR ``L = 1``; SSIM Gaussian sigma 1.5, 11x11 window,
population covariance, K1 0.01, K2 0.03, unless ``ssim_opts`` says otherwise).
``std`` is the sample standard deviation (ddof 1).  A PSNR of ``inf`` (prediction identical to the
truth) is written as ``inf`` in the per-tile CSV, counted in ``psnr_n_inf`` and left out of the
PSNR mean/std.

Porosity: pore fraction = share of pixels ``<= porosity_threshold`` (on [0, 1]) in the predicted
and the true SEM.  ``porosity_threshold=None`` (the default) takes Otsu's threshold of the pooled
histogram of the train-split ground-truth SEM tiles (:func:`otsu_sem_threshold`), so the threshold
is fixed before looking at any test tile.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from rocksr import metrics as M
from rocksr.predict import iter_tiles, open_predictions, read_tiles, split_tile_ids

__all__ = [
    "otsu_sem_threshold",
    "per_tile_metrics",
    "table1",
    "table1_markdown",
    "evaluate",
]

_MANIFEST_COLS = ["sample", "grid_row", "grid_col", "angle", "view"]


def otsu_sem_threshold(store: str | os.PathLike | Any, splits: str | os.PathLike,
                       batch_size: int = 64) -> float:
    """Otsu threshold (on [0, 1]) of the pooled train-split ground-truth SEM histogram."""
    from rocksr.store import open_tiles

    group = open_tiles(store) if isinstance(store, str | os.PathLike) else store
    ids = split_tile_ids(splits, "train")
    hist = np.zeros(256, dtype=np.int64)
    for _, _, sem in iter_tiles(group, "sem", ids, batch_size):
        hist += np.bincount(sem.ravel(), minlength=256)
    return M.otsu_threshold_from_histogram(hist)


def per_tile_metrics(
    pred_stores: dict[str, str | os.PathLike],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    manifest: str | os.PathLike | pd.DataFrame,
    porosity_threshold: float,
    *,
    ssim_opts: dict | None = None,
    crop_border: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """The per-tile table (see module docstring) for every prediction store."""
    from rocksr.store import open_tiles

    if not pred_stores:
        raise ValueError("evaluate: no prediction stores given")
    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    man = manifest if isinstance(manifest, pd.DataFrame) else pd.read_csv(manifest)
    man = man.set_index("tile_id")
    opened = {name: open_predictions(p, expect_tile_ids=ids) for name, p in pred_stores.items()}
    sopts = dict(ssim_opts or {})
    cols: dict[str, list] = {k: [] for k in ("model", "kind", "index", "tile_id", "mse", "psnr",
                                            "ssim", "porosity_pred", "porosity_true")}
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
            cols["ssim"] += list(np.atleast_1d(M.ssim(pred, truth, crop_border=crop_border,
                                                      **sopts)))
            cols["porosity_pred"] += list(np.atleast_1d(M.porosity(pred, porosity_threshold)))
            cols["porosity_true"] += list(p_true)
        pos += n
    df = pd.DataFrame(cols)
    df["porosity_abs_err"] = (df["porosity_pred"] - df["porosity_true"]).abs()
    extra = [c for c in _MANIFEST_COLS if c in man.columns]
    info = man.loc[df["tile_id"].to_numpy(), extra].reset_index(drop=True)
    df = pd.concat([df.iloc[:, :4], info, df.iloc[:, 4:]], axis=1)
    return df


def table1(per_tile: pd.DataFrame, porosity_threshold: float | None = None,
           store_attrs: dict[str, dict] | None = None) -> pd.DataFrame:
    """mean / std / count per model (order of first appearance in ``per_tile``)."""
    rows = []
    for name in dict.fromkeys(per_tile["model"]):
        d = per_tile[per_tile["model"] == name]
        ps, ss = M.summarize(d["psnr"].to_numpy()), M.summarize(d["ssim"].to_numpy())
        pe = M.summarize(d["porosity_abs_err"].to_numpy())
        attrs = (store_attrs or {}).get(name, {})
        rows.append({
            "model": name,
            "kind": d["kind"].iloc[0],
            "count": ps["count"],
            "psnr_mean": ps["mean"], "psnr_std": ps["std"], "psnr_n_inf": ps["n_inf"],
            "ssim_mean": ss["mean"], "ssim_std": ss["std"],
            "porosity_abs_err_mean": pe["mean"], "porosity_abs_err_std": pe["std"],
            "porosity_pred_mean": float(d["porosity_pred"].mean()),
            "porosity_true_mean": float(d["porosity_true"].mean()),
            "porosity_threshold": porosity_threshold,
            "sampler": attrs.get("sampler"),
            "steps": attrs.get("steps"),
        })
    return pd.DataFrame(rows)


def _pm(mean: float, std: float, fmt: str) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:{fmt}} ± {std:{fmt}}" if not math.isnan(std) else f"{mean:{fmt}}"


def table1_markdown(table: pd.DataFrame, porosity_threshold: float | None = None,
                    note: str = "") -> str:
    """Table 1 as a Markdown table (mean ± std, count) with a short methods note."""
    lines = [
        "| Model | Kind | n | SSIM | PSNR (dB) | abs. porosity error |",
        "|---|---|---:|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        psnr = _pm(r.psnr_mean, r.psnr_std, ".2f")
        if r.psnr_n_inf:
            psnr += f" ({r.psnr_n_inf} × inf excluded)"
        kind = r.kind if not (r.kind == "ddpm" and r.sampler) else (
            f"ddpm, {r.sampler}" + (f" {int(r.steps)} steps" if r.steps is not None
                                    and not pd.isna(r.steps) else ""))
        lines.append(
            f"| {r.model} | {kind} | {r.count} | {_pm(r.ssim_mean, r.ssim_std, '.3f')} | {psnr} | "
            f"{_pm(r.porosity_abs_err_mean, r.porosity_abs_err_std, '.4f')} |"
        )
    thr = "" if porosity_threshold is None else f"{porosity_threshold:.4f}"
    lines += [
        "",
        "Mean ± sample std (ddof 1) over the test tiles. Images in [0, 1] (uint8/255). "
        "PSNR = 10 log10(1/MSE); infinite PSNR (identical images) is excluded from the mean "
        "and counted. SSIM: Gaussian window sigma 1.5 (11×11), population covariance, "
        "K1 = 0.01, K2 = 0.03, mean of the SSIM map without the 5-px border (= scikit-image). "
        f"Porosity: fraction of SEM pixels ≤ {thr} (threshold on [0, 1]).",
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def evaluate(
    pred_stores: dict[str, str | os.PathLike],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    manifest: str | os.PathLike | pd.DataFrame,
    out_per_tile_csv: str | os.PathLike,
    out_table_csv: str | os.PathLike,
    out_table_md: str | os.PathLike,
    porosity_threshold: float | None = None,
    *,
    ssim_opts: dict | None = None,
    crop_border: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Evaluate every prediction store (models and baselines) on the test split.

    Writes the per-tile CSV, Table 1 (CSV and Markdown) and returns Table 1.  See the module
    docstring for columns, PSNR-inf handling and the porosity threshold.
    """
    from rocksr.store import write_table, write_text

    if porosity_threshold is None:
        thr = otsu_sem_threshold(store, splits)
        source = "Otsu on the train-split ground-truth SEM"
    else:
        thr = float(porosity_threshold)
        source = "from the config"
    per_tile = per_tile_metrics(pred_stores, store, splits, manifest, thr, ssim_opts=ssim_opts,
                                crop_border=crop_border, batch_size=batch_size)
    attrs = {name: open_predictions(p)[1] for name, p in pred_stores.items()}
    table = table1(per_tile, thr, attrs)
    write_table(per_tile, out_per_tile_csv)
    write_table(table, out_table_csv)
    note = f"Porosity threshold {thr:.4f} ({source})."
    if crop_border:
        note += f" {crop_border} border pixels cropped before every metric."
    if ssim_opts:
        note += f" SSIM settings overridden (these replace the ones above): {dict(ssim_opts)}."
    write_text(table1_markdown(table, thr, note), out_table_md)
    return table


def read_tiles_for_figure(
    pred_stores: dict[str, str | os.PathLike], store: str | os.PathLike,
    splits: str | os.PathLike, positions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(mct, sem, {model: pred}) uint8 for test positions ``positions`` (used by the figures)."""
    from rocksr.store import open_tiles

    group = open_tiles(store)
    ids = split_tile_ids(splits, "test")
    sel = ids[np.asarray(positions, dtype=np.int64)]
    mct, sem = read_tiles(group, "mct", sel), read_tiles(group, "sem", sel)
    preds = {}
    for name, p in pred_stores.items():
        arr, _ = open_predictions(p, expect_tile_ids=ids)
        preds[name] = np.stack([np.asarray(arr[int(i)]) for i in positions])
    return mct, sem, preds
