"""Figures of the data stages: normalization histograms, the split map, the study's Figure 1."""

from __future__ import annotations

import os

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from rocksr.data.normalize import histogram
from rocksr.files import save_figure

matplotlib.use("Agg")


SPLIT_COLOURS = {
    "train": (0.20, 0.55, 0.85),
    "val": (0.95, 0.65, 0.10),
    "test": (0.85, 0.20, 0.25),
    "excluded": (0.6, 0.6, 0.6),
}


def histogram_figure(
    raw: dict[str, np.ndarray],
    normalized: dict[str, np.ndarray],
    title: str,
    path: str | os.PathLike,
) -> None:
    """Histograms of each modality before (raw values) and after (8-bit) normalization."""
    fig, axes = plt.subplots(len(raw), 2, figsize=(9, 3 * len(raw)), squeeze=False)
    for i, key in enumerate(raw):
        for j, (arr, label) in enumerate(
            ((raw[key], "raw"), (normalized[key], "normalized 8-bit"))
        ):
            counts, edges = histogram(arr)
            ax = axes[i, j]
            ax.fill_between(edges[:-1], counts / counts.sum(), step="post", color="0.3")
            ax.set_title(f"{key}: {label} ({arr.dtype})")
            ax.set_xlabel("grey value")
            ax.set_ylabel("fraction of pixels")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def split_map_figure(
    manifest: pd.DataFrame, splits: pd.DataFrame, path: str | os.PathLike, max_px: int = 800
) -> None:
    """Each sample's image area coloured by the split of the footprints covering it."""
    from rocksr.data.splits import footprint_masks

    labels = splits.set_index("tile_id").loc[manifest["tile_id"], "split"].to_numpy()
    samples = list(dict.fromkeys(manifest["sample"]))
    fig, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 5), squeeze=False)
    for ax, sample in zip(axes[0], samples, strict=True):
        masks = footprint_masks(manifest, labels, sample)
        h, w = next(iter(masks.values())).shape
        step = max(1, int(np.ceil(max(h, w) / max_px)))
        rgb = np.ones((h, w, 3), dtype=np.float32)
        for name in ("train", "val", "test"):
            rgb[masks[name]] = SPLIT_COLOURS[name]
        overlap = sum(m.astype(np.int32) for m in masks.values()) > 1
        rgb[overlap] = (0.0, 0.0, 0.0)
        ax.imshow(rgb[::step, ::step], extent=(0, w, h, 0), interpolation="nearest")
        ax.set_title(f"{sample}: footprints by split (black = shared pixels)")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    handles = [Patch(color=c, label=n) for n, c in SPLIT_COLOURS.items() if n != "excluded"]
    handles.append(Patch(color="white", label="no footprint (excluded/none)"))
    fig.legend(handles=handles, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path)


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
