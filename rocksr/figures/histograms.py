"""Histograms of a pair before and after contrast normalization."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from rocksr.data.normalize import histogram
from rocksr.files import save_figure


def histogram_figure(
    raw: dict[str, np.ndarray],
    normalized: dict[str, np.ndarray],
    title: str,
    path: str | os.PathLike,
) -> None:
    """Histograms of each modality before (raw values) and after (8-bit) normalization (any
    shape: pass the pixels inside a mask as 1-D arrays)."""
    fig, axes = plt.subplots(len(raw), 2, figsize=(9, 3 * len(raw)), squeeze=False)
    for i, key in enumerate(raw):
        for j, (arr, label) in enumerate(
            ((raw[key], "raw"), (normalized[key], "normalized 8-bit"))
        ):
            counts, edges = histogram(arr)
            ax = axes[i, j]
            ax.fill_between(edges[:-1], counts / counts.sum(), step="post", color="0.3")
            ax.set_title(f"{key}: {label} ({arr.dtype})", fontsize=10)
            ax.set_xlabel("grey value")
            ax.set_ylabel("fraction of pixels")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
