"""Evaluation figures (PNG, matplotlib Agg): Figure 2, Figure 3, training curves, sampler study.

* Figure 2: per-sample SSIM (top) and PSNR (bottom) over the first ``n`` (60) test tiles in test
  order (ascending tile_id), every model and baseline on the same axes.
* Figure 3: ``n_tiles`` (3) test tiles drawn with ``numpy.random.default_rng(seed)`` (the same
  tiles for every model); per model a block of rows [micro-CT | prediction | ground truth |
  |prediction - truth|], all on one grey scale 0..1 (``vmin=0, vmax=1``).
* Training curves: one panel per history CSV; every numeric column except the x axis
  (``step``, else ``epoch``, else the row number) is drawn; ``val`` columns as markers.
* Sampler study: PSNR, SSIM and seconds per image vs. number of steps (log x), one line per sampler.
* Uncertainty (DDPM with K > 1 samples per tile): the Figure 3 tiles (same seeded choice), one
  row each: [micro-CT | mean of the K samples | ground truth | per-pixel std of the samples |
  |mean - truth|], the first three on one grey scale 0..255, the std and the error each on its
  own perceptually uniform colour scale (viridis / magma, shared by all rows, colour bars in
  grey levels); the title gives Pearson's r between per-pixel std and absolute error over every
  pixel of every test tile (:func:`std_error_correlation`), each row label the tile's own r.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from rocksr.files import save_figure

_STYLE = {
    "identity": dict(ls="--", color="0.5"),
    "histmatch": dict(ls=":", color="0.3"),
    "mean": dict(ls="-.", color="0.6"),
}


def figure2(
    per_tile: str | os.PathLike | pd.DataFrame, out_png: str | os.PathLike, n: int = 60
) -> None:
    """Per-sample SSIM and PSNR of the first ``n`` test tiles, all models on the same axes."""
    if isinstance(per_tile, pd.DataFrame):
        df = per_tile
    else:
        from rocksr.files import read_table

        df = read_table(per_tile, "per-tile metrics table")
    missing = {"model", "index", "ssim", "psnr"} - set(df.columns)
    if missing:
        raise ValueError(
            f"{per_tile if not isinstance(per_tile, pd.DataFrame) else 'per-tile'}: "
            f"per-tile metrics table lacks columns {sorted(missing)}"
        )
    df = df[df["index"] < n]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for name in dict.fromkeys(df["model"]):
        d = df[df["model"] == name].sort_values("index")
        x = d["index"].to_numpy() + 1
        style = dict(_STYLE.get(name, {}))
        ax1.plot(x, d["ssim"], marker=".", label=name, **style)
        psnr = d["psnr"].replace([np.inf], np.nan)
        ax2.plot(x, psnr, marker=".", label=name, **style)
    n_shown = int(df["index"].nunique())
    ax1.set_ylabel("SSIM")
    ax1.set_title(f"Per-sample SSIM and PSNR, first {n_shown} test tiles")
    ax2.set_ylabel("PSNR (dB)")
    ax2.set_xlabel("test tile (index in the test split)")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    # outside the axes, right of the SSIM panel: with 5+ rows a legend inside hides data
    ax1.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(fig, out_png)


def choose_figure3_tiles(n_test: int, n_tiles: int = 3, seed: int = 0) -> np.ndarray:
    """Sorted test positions for Figure 3, drawn without replacement with ``default_rng(seed)``."""
    k = min(int(n_tiles), int(n_test))
    return np.sort(np.random.default_rng(seed).choice(n_test, size=k, replace=False))


def figure3(
    pred_stores: dict[str, str | os.PathLike],
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_png: str | os.PathLike,
    n_tiles: int = 3,
    seed: int = 0,
    models: list[str] | None = None,
) -> np.ndarray:
    """[micro-CT | prediction | truth | |difference|] for the same random test tiles and each
    model in ``models`` (default: all stores).  Returns the chosen test positions."""
    from rocksr.data.predstore import read_tiles_for_figure
    from rocksr.data.splits import split_tile_ids

    names = list(models or pred_stores)
    ids = split_tile_ids(splits, "test")
    pos = choose_figure3_tiles(len(ids), n_tiles, seed)
    mct, sem, preds = read_tiles_for_figure({m: pred_stores[m] for m in names}, store, splits, pos)
    rows = len(names) * len(pos)
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.55 * rows), squeeze=False)
    titles = ["micro-CT", "prediction", "ground truth", "|prediction − truth|"]
    r = 0
    for name in names:
        for k, p in enumerate(pos):
            ct, gt, pr = (a[k].astype(np.float64) / 255.0 for a in (mct, sem, preds[name]))
            for c, img in enumerate((ct, pr, gt, np.abs(pr - gt))):
                ax = axes[r, c]
                ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(titles[c])
            axes[r, 0].set_ylabel(f"{name}\ntile {int(ids[p])}", fontsize="small")
            r += 1
    fig.suptitle("Test tiles (grey scale 0–1 in every panel)", y=1.0)
    fig.tight_layout()
    save_figure(fig, out_png)
    return pos
