"""The leak, measured: the same model and budget on a leaky and on a leak-free split.

The study split overlapping, rotated views at random, so the same pixels sit in train and test.
:func:`leak_table` puts the test scores of a model trained on the ``random`` split (evaluated on
its own test split) next to those of the same model trained on the leak-free split of the run,
and gives the inflation: how many dB of PSNR and points of SSIM the leak adds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rocksr.config.leak import LEAKY_STRATEGY
from rocksr.files import read_table


def scores(per_tile: pd.DataFrame, model: str) -> dict:
    """Mean and std of PSNR (finite values) and SSIM of ``model``'s rows of a per-tile table."""
    d = per_tile[per_tile["model"] == model]
    if d.empty:
        raise ValueError(f"no per-tile rows of model {model!r}")
    psnr = d["psnr"].to_numpy(dtype=float)
    psnr = psnr[np.isfinite(psnr)]
    return {
        "n_test": len(d),
        "psnr_mean": float(psnr.mean()),
        "psnr_std": float(psnr.std(ddof=1)) if len(psnr) > 1 else 0.0,
        "ssim_mean": float(d["ssim"].mean()),
        "ssim_std": float(d["ssim"].std(ddof=1)) if len(d) > 1 else 0.0,
    }


def shared_pixels(split_counts_csv: str | Path) -> int:
    """The footprint pixels that a split's train, val and test share (its ``split_counts.csv``,
    written by ``rocksr split``)."""
    counts = read_table(split_counts_csv, "the split counts")
    if "shared_footprint_pixels" not in counts.columns or counts.empty:
        raise ValueError(f"{split_counts_csv}: no shared_footprint_pixels (not a split_counts.csv)")
    return int(counts["shared_footprint_pixels"].iloc[0])


def leak_table(
    model: str,
    leak_free: dict,
    leaky: dict,
    leak_free_strategy: str,
    shared_pixels: int,
    leaky_strategy: str = LEAKY_STRATEGY,
    leak_free_shared_pixels: int = 0,
) -> pd.DataFrame:
    """One row per split strategy with the footprint pixels its splits share (``shared_pixels``
    of the leaky split, ``leak_free_shared_pixels`` of the run's own), then the inflation row
    (leaky minus leak-free)."""
    own = {"shared_pixels": int(leak_free_shared_pixels)}
    rows = [
        {"model": model, "split": leak_free_strategy, **own, **leak_free},
        {"model": model, "split": leaky_strategy, "shared_pixels": shared_pixels, **leaky},
    ]
    rows.append(
        {
            "model": model,
            "split": f"inflation ({leaky_strategy} - {leak_free_strategy})",
            "shared_pixels": shared_pixels,
            "n_test": np.nan,
            "psnr_mean": leaky["psnr_mean"] - leak_free["psnr_mean"],
            "psnr_std": np.nan,
            "ssim_mean": leaky["ssim_mean"] - leak_free["ssim_mean"],
            "ssim_std": np.nan,
        }
    )
    return pd.DataFrame(rows)


def leak_markdown(table: pd.DataFrame) -> str:
    """The table and a sentence on what the inflation means."""
    lines = [
        "| model | split | test tiles | PSNR (dB) | SSIM | footprint pixels shared by splits |",
        "|---|---|---:|---|---|---:|",
    ]
    for r in table.itertuples(index=False):
        if str(r.split).startswith("inflation"):
            lines.append(
                f"| {r.model} | **{r.split}** | | **{r.psnr_mean:+.2f} dB** | "
                f"**{r.ssim_mean:+.3f}** | |"
            )
        else:
            lines.append(
                f"| {r.model} | {r.split} | {int(r.n_test)} | {r.psnr_mean:.2f} ± {r.psnr_std:.2f}"
                f" | {r.ssim_mean:.3f} ± {r.ssim_std:.3f} | {int(r.shared_pixels)} |"
            )
    own, leaky, inf = table.iloc[0], table.iloc[1], table.iloc[-1]
    lines += [
        "",
        f"The same model, trained with the same config and budget on the `{leaky.split}` split "
        f"of the same views ({int(leaky.shared_pixels)} footprint pixels shared between its "
        f"splits), scores {inf.psnr_mean:+.2f} dB PSNR and {inf.ssim_mean:+.3f} SSIM against "
        f"the run's own `{own.split}` split: that is how much overlapping, rotated views in "
        "more than one split inflate the numbers here (each model is evaluated on its own "
        "split's test tiles).",
    ]
    if int(own.shared_pixels):
        lines.append(
            f"\n⚠ The run's own split shares {int(own.shared_pixels)} footprint pixels between "
            "its splits too: it is not leak-free, and the inflation above understates the leak."
        )
    return "\n".join(lines) + "\n"
