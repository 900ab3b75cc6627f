"""Whole-slice inference at full resolution: micro-CT | cGAN | DDPM | SEM truth on one crop."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from rocksr.files import save_figure


def enhance_figure(
    panels: dict[str, np.ndarray], title: str, path: str | os.PathLike, dpi: int = 100
) -> None:
    """The same crop of each image side by side, one image pixel per figure pixel at ``dpi``."""
    n = len(panels)
    h, w = next(iter(panels.values())).shape
    fig, axes = plt.subplots(1, n, figsize=(n * w / dpi, h / dpi + 0.5), squeeze=False)
    for ax, (name, img) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.5 / (h / dpi + 0.5), wspace=0.02)
    save_figure(fig, path, dpi=dpi)
