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

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

from rocksr.figures_data import save_figure  # noqa: E402

__all__ = [
    "figure2",
    "figure3",
    "choose_figure3_tiles",
    "plot_training_curves",
    "plot_sampler_study",
    "std_error_correlation",
    "uncertainty_figure",
]

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
        from rocksr.evaluate import _read_csv

        df = _read_csv(per_tile, "per-tile metrics table")
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
    ax2.set_xlabel("test sample index")
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
    from rocksr.evaluate import read_tiles_for_figure
    from rocksr.predict import split_tile_ids

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


def _x_column(df: pd.DataFrame) -> str | None:
    for c in ("step", "epoch"):
        if c in df.columns:
            return c
    return None


_SKIP_COLS = {"step", "epoch", "batch_in_epoch", "time", "wall_s", "seconds", "img_per_s"}


def _is_skipped(col: str) -> bool:
    c = col.lower()
    return c in _SKIP_COLS or c.startswith("gpu_") or c.endswith("_mb") or c.startswith("lr")


def plot_training_curves(
    histories: dict[str, str | os.PathLike], out_png: str | os.PathLike, logy: bool | None = None
) -> None:
    """One panel per model history CSV: every numeric loss-like column against ``step``.

    Columns ``step, epoch, lr*, img_per_s, gpu_*`` are not drawn (the learning rate goes on a
    dashed secondary axis).  With a ``phase`` column (train/val rows) each column is drawn per
    phase, validation rows with markers.  ``logy=None``: log scale when every drawn value > 0.
    """
    items = [(k, Path(v)) for k, v in histories.items() if v is not None]
    if not items:
        raise ValueError("plot_training_curves: no history files given")
    fig, axes = plt.subplots(1, len(items), figsize=(6 * len(items), 4), squeeze=False)
    from rocksr.evaluate import _read_csv

    for ax, (name, path) in zip(axes[0], items, strict=True):
        df = _read_csv(path, f"{name} training history")
        xcol = _x_column(df)
        if xcol is None:
            df = df.assign(row=np.arange(len(df)))
            xcol = "row"
        phases = list(dict.fromkeys(df["phase"])) if "phase" in df.columns else [None]
        num = [c for c in df.select_dtypes("number").columns if c != xcol and not _is_skipped(c)]
        drawn: list[np.ndarray] = []
        for ph in phases:
            d = df if ph is None else df[df["phase"] == ph]
            for c in num:
                ok = d[c].notna().to_numpy()
                if not ok.any():
                    continue
                is_val = "val" in c.lower() or (ph is not None and str(ph) == "val")
                label = c if ph is None or c.lower().startswith(str(ph)) else f"{ph} {c}"
                ax.plot(
                    d[xcol][ok],
                    d[c][ok],
                    marker="o" if is_val else None,
                    ms=3,
                    lw=1.5 if is_val else 0.8,
                    label=label,
                )
                drawn.append(d[c][ok].to_numpy(dtype=float))
        lr_cols = [c for c in df.select_dtypes("number").columns if c.lower().startswith("lr")]
        if lr_cols:
            ax2 = ax.twinx()
            for c in lr_cols:
                ok = df[c].notna().to_numpy()
                ax2.plot(df[xcol][ok], df[c][ok], color="0.6", ls="--", lw=0.8, label=c)
            ax2.set_ylabel("learning rate")
            ax2.legend(loc="upper center", fontsize="x-small")
        vals = np.concatenate(drawn) if drawn else np.array([])
        if (logy is None and vals.size and (vals > 0).all()) or logy:
            ax.set_yscale("log")
        ax.set_xlabel(xcol)
        ax.set_ylabel("loss")
        ax.set_title(f"{name} training history")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    save_figure(fig, out_png)


def plot_sampler_study(study: str | os.PathLike | pd.DataFrame, out_png: str | os.PathLike) -> None:
    """PSNR, SSIM and seconds per image vs. steps, one line per sampler (log-scaled x)."""
    df = study if isinstance(study, pd.DataFrame) else pd.read_csv(study)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for s in dict.fromkeys(df["sampler"]):
        d = df[df["sampler"] == s].sort_values("steps")
        mk = "s" if s == "ancestral" else "o"
        axes[0].errorbar(
            d["steps"], d["psnr_mean"], yerr=d["psnr_std"], marker=mk, capsize=3, label=s
        )
        axes[1].errorbar(
            d["steps"], d["ssim_mean"], yerr=d["ssim_std"], marker=mk, capsize=3, label=s
        )
        axes[2].plot(d["steps"], d["sec_per_image"], marker=mk, label=s)
    ticks = sorted({int(v) for v in df["steps"]})
    for ax, yl in zip(axes, ("PSNR (dB)", "SSIM", "seconds per image"), strict=True):
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sampling steps (network evaluations)")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, which="both")
    axes[2].set_yscale("log")
    n = int(df["n_tiles"].iloc[0]) if "n_tiles" in df.columns and len(df) else 0
    axes[0].set_title(f"quality vs. steps ({n} test tiles)")
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, out_png)


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
    from rocksr.predict import iter_tiles, open_predictions, split_tile_ids
    from rocksr.store import open_tiles

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
    from rocksr.evaluate import read_tiles_for_figure
    from rocksr.predict import open_predictions, split_tile_ids

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
