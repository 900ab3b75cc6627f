"""Pore-phase statistics of the predictions against the truth: S2(r) and chord lengths."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from rocksr.files import save_figure


def rock_figure(stats: dict[str, dict], title: str, path: str | os.PathLike) -> None:
    """Top: mean S2(r) over the test tiles per model, with the truth's. Bottom: the pore
    chord-length distributions (pooled over the test tiles), log scale. ``stats``: name ->
    :func:`rocksr.evaluation.rock_metrics.rock_statistics` output; the truth is ``"SEM (truth)"``."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 7))
    for name, st in stats.items():
        truth = name == "SEM (truth)"
        style = {"color": "black", "lw": 2.2} if truth else {"lw": 1.3}
        ax1.plot(st["r"], st["s2"].mean(axis=0), label=name, **style)
        chords = np.concatenate(st["chords"]) if st["chords"] else np.zeros(0)
        if chords.size:
            top = int(np.percentile(chords, 99)) + 2
            hist, edges = np.histogram(chords, bins=np.arange(1, top + 1))
            ax2.step(edges[:-1], hist / max(hist.sum(), 1), where="post", label=name, **style)
    ax1.set_xlabel("r (px)")
    ax1.set_ylabel("S2(r) of the pore phase")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("pore chord length (px), rows and columns")
    ax2.set_ylabel("fraction of chords")
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
