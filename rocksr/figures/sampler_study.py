"""The sampler study's figure: PSNR and SSIM against network evaluations per sampler."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

from rocksr.files import save_figure


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
