"""The study's Figure 1: a base tile and its rotated views."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np

from rocksr.files import save_figure


def figure1(
    tiles: dict[str, np.ndarray], angles: list[float], title: str, path: str | os.PathLike
) -> None:
    """The study's Figure 1: one base tile and rotated views, micro-CT (top) and SEM (bottom).

    ``tiles`` maps ``"mct"``/``"sem"`` to arrays (n_views, S, S) in the order of ``angles``.
    """
    n = len(angles)
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 7.0), squeeze=False)
    for i, (key, label) in enumerate((("mct", "micro-CT"), ("sem", "SEM"))):
        for j, angle in enumerate(angles):
            ax = axes[i, j]
            ax.imshow(tiles[key][j], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{label}, {'base tile' if angle == 0 else f'rotated {angle:g}°'}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
