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


OUTSIDE_MASK = (0.35, 0.35, 0.35)


def split_map_figure(
    manifest: pd.DataFrame,
    splits: pd.DataFrame,
    path: str | os.PathLike,
    max_px: int = 800,
    masks: dict[str, np.ndarray] | None = None,
    dropped: pd.DataFrame | None = None,
) -> None:
    """Each sample's image area coloured by the split of the footprints covering it; outside a
    sample's valid-area mask (``masks`` by name) dark grey, with the dropped base tiles
    (``dropped``, :func:`rocksr.data.tilestore.plan_dataset`) counted in the title."""
    from rocksr.data.splits import footprint_masks

    labels = splits.set_index("tile_id").loc[manifest["tile_id"], "split"].to_numpy()
    samples = list(dict.fromkeys(manifest["sample"]))
    fig, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 5), squeeze=False)
    for ax, sample in zip(axes[0], samples, strict=True):
        covered = footprint_masks(manifest, labels, sample)
        h, w = next(iter(covered.values())).shape
        step = max(1, int(np.ceil(max(h, w) / max_px)))
        rgb = np.ones((h, w, 3), dtype=np.float32)
        mask = (masks or {}).get(sample)
        if mask is not None:
            rgb[~mask] = OUTSIDE_MASK
        for name in ("train", "val", "test"):
            rgb[covered[name]] = SPLIT_COLOURS[name]
        overlap = sum(m.astype(np.int32) for m in covered.values()) > 1
        rgb[overlap] = (0.0, 0.0, 0.0)
        ax.imshow(rgb[::step, ::step], extent=(0, w, h, 0), interpolation="nearest")
        title = f"{sample}: footprints by split (black = shared pixels)"
        if dropped is not None:
            reasons = dropped.loc[dropped["sample"] == sample, "reason"].value_counts()
            if len(reasons):
                said = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.items())
                title += f"\nbase tiles dropped: {said}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    handles = [Patch(color=c, label=n) for n, c in SPLIT_COLOURS.items() if n != "excluded"]
    handles.append(Patch(facecolor="white", edgecolor="0.5", label="no footprint (excluded/none)"))
    if masks and any(m is not None and not m.all() for m in masks.values()):
        handles.append(Patch(color=OUTSIDE_MASK, label="outside the mask"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path)
