"""Where each split's tile footprints lie on each sample."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from rocksr.files import save_figure

SPLIT_COLOURS = {
    "train": (0.20, 0.55, 0.85),
    "val": (0.95, 0.65, 0.10),
    "test": (0.85, 0.20, 0.25),
    "excluded": (0.6, 0.6, 0.6),
}


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
