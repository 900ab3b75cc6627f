"""The leak study: test PSNR and SSIM of one model per split strategy, with the inflation."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd

from rocksr.files import save_figure


def leak_figure(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Two bar panels (PSNR, SSIM): mean ± std per split strategy, the inflation in the title."""
    rows = table[~table["split"].astype(str).str.startswith("inflation")]
    inf = table.iloc[-1]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, metric, unit, d in (
        (axes[0], "psnr", "dB", f"{inf.psnr_mean:+.2f} dB"),
        (axes[1], "ssim", "", f"{inf.ssim_mean:+.3f}"),
    ):
        colours = ["tab:green", "tab:red"][: len(rows)]
        ax.bar(
            rows["split"],
            rows[f"{metric}_mean"],
            yerr=rows[f"{metric}_std"],
            color=colours,
            capsize=4,
        )
        ax.set_ylabel(f"test {metric.upper()} {unit}".strip())
        ax.set_title(f"{metric.upper()}: leak inflates by {d}", fontsize=10)
        lo = float((rows[f"{metric}_mean"] - rows[f"{metric}_std"]).min())
        ax.set_ylim(bottom=max(0.0, lo * 0.9))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{rows['model'].iloc[0]}: same model and budget, leak-free vs. random split")
    fig.tight_layout()
    save_figure(fig, path)
