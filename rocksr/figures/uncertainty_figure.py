"""The uncertainty figure: per-pixel standard deviation of the DDPM's K samples beside the
error of their mean, on the Figure 3 tiles."""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import numpy as np

from rocksr.figures.figures import choose_figure3_tiles
from rocksr.files import save_figure


class _PearsonSums:
    """Streaming sums for Pearson's r of two equally shaped arrays (float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0
        self.x0 = self.y0 = None  # shift by the first values: better conditioned sums

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.size == 0:
            return
        if self.x0 is None or self.y0 is None:
            self.x0, self.y0 = float(x.mean()), float(y.mean())
        x, y = x - self.x0, y - self.y0
        self.n += x.size
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float(x @ x)
        self.syy += float(y @ y)
        self.sxy += float(x @ y)

    def r(self) -> float:
        """Pearson's r; NaN when either variable is constant (or nothing was added)."""
        if self.n < 2:
            return math.nan
        vx = self.sxx - self.sx * self.sx / self.n
        vy = self.syy - self.sy * self.sy / self.n
        if vx <= 0 or vy <= 0:
            return math.nan
        return float(np.clip((self.sxy - self.sx * self.sy / self.n) / math.sqrt(vx * vy), -1, 1))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    acc = _PearsonSums()
    acc.add(x, y)
    return acc.r()


def std_error_correlation(
    pred_store: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    batch_size: int = 32,
) -> tuple[float, int]:
    """(Pearson's r, pixel count) between the per-pixel ``std`` of a multi-sample prediction
    store and the absolute error ``|mean - truth|`` (both in grey levels), over every pixel of
    every test tile, streamed ``batch_size`` tiles at a time."""
    from rocksr.data.predstore import iter_tiles, open_predictions
    from rocksr.data.splits import split_tile_ids
    from rocksr.data.tilestore import open_tiles

    ids = split_tile_ids(splits, "test")
    mean, _ = open_predictions(pred_store, expect_tile_ids=ids, array="mean")
    std, _ = open_predictions(pred_store, expect_tile_ids=ids, array="std")
    acc = _PearsonSums()
    pos = 0
    for _, sel, truth in iter_tiles(open_tiles(store), "sem", ids, batch_size):
        n = len(sel)
        err = np.abs(np.asarray(mean[pos : pos + n], dtype=np.float64) - truth)
        acc.add(np.asarray(std[pos : pos + n], dtype=np.float64), err)
        pos += n
    return acc.r(), acc.n


def uncertainty_figure(
    pred_store: str | os.PathLike,
    store: str | os.PathLike,
    splits: str | os.PathLike,
    out_png: str | os.PathLike,
    n_tiles: int = 3,
    seed: int = 0,
    name: str = "ddpm",
) -> dict:
    """[micro-CT | mean prediction | truth | std | |mean - truth|] for the Figure 3 tiles of a
    store with ``n_samples > 1``.  Returns ``{"positions", "r", "n_pixels", "n_samples"}``."""
    from rocksr.data.predstore import open_predictions, read_tiles_for_figure
    from rocksr.data.splits import split_tile_ids

    _, attrs = open_predictions(pred_store)
    k = int(attrs.get("n_samples", 1))
    if k < 2:
        raise ValueError(
            f"{pred_store}: n_samples = {k}; the uncertainty figure needs a store "
            "with several samples per tile (rocksr predict --n-samples K, K > 1)"
        )
    ids = split_tile_ids(splits, "test")
    pos = choose_figure3_tiles(len(ids), n_tiles, seed)
    mct, sem, arrays = read_tiles_for_figure(
        {"mean": (pred_store, "mean"), "std": (pred_store, "std")}, store, splits, pos
    )
    mean = arrays["mean"].astype(np.float64)
    std = arrays["std"].astype(np.float64)
    err = np.abs(mean - sem.astype(np.float64))
    r_all, n_pix = std_error_correlation(pred_store, store, splits)
    std_max = max(1.0, float(np.ceil(np.percentile(std, 99.5))))
    err_max = max(1.0, float(np.ceil(np.percentile(err, 99.5))))
    rows = len(pos)
    fig, axes = plt.subplots(
        rows, 5, figsize=(14, 2.8 * rows + 1.6), squeeze=False, layout="constrained"
    )
    titles = [
        "micro-CT",
        f"mean of {k} samples",
        "ground truth",
        f"std of {k} samples",
        "|mean − truth|",
    ]
    grey_im = std_im = err_im = None
    for r, p in enumerate(pos):
        for c, img in enumerate((mct[r], mean[r], sem[r])):
            grey_im = axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        std_im = axes[r, 3].imshow(
            std[r], cmap="viridis", vmin=0, vmax=std_max, interpolation="nearest"
        )
        err_im = axes[r, 4].imshow(
            err[r], cmap="magma", vmin=0, vmax=err_max, interpolation="nearest"
        )
        for c in range(5):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(titles[c])
        r_tile = _pearson(std[r], err[r])
        r_txt = "n/a" if math.isnan(r_tile) else f"{r_tile:.2f}"
        axes[r, 0].set_ylabel(f"tile {int(ids[p])}\nr(std, err) = {r_txt}", fontsize="small")
    kw = {"location": "bottom", "shrink": 0.9, "aspect": 30}
    fig.colorbar(grey_im, ax=axes[:, 0:3], label="grey level (0–255)", **kw)
    fig.colorbar(std_im, ax=axes[:, 3], label="std (grey levels)", extend="max", **kw)
    fig.colorbar(err_im, ax=axes[:, 4], label="|error| (grey levels)", extend="max", **kw)
    r_txt = "n/a (constant std or error)" if math.isnan(r_all) else f"{r_all:.2f}"
    fig.suptitle(
        f"{name}: mean, spread and error of {k} samples per tile\n"
        f"Pearson r between per-pixel std and |mean − truth| over all {len(ids)} test tiles "
        f"({n_pix:,} pixels): {r_txt}",
        fontsize="medium",
    )
    save_figure(fig, out_png)
    return {"positions": pos, "r": r_all, "n_pixels": n_pix, "n_samples": k}
