"""The perception-distortion plane (Blau & Michaeli 2018): every Table 1 row by its distortion
(PSNR, SSIM; higher is better) against its texture error (power-spectrum distance; lower is
better). Deterministic estimates sit low-distortion and blurred; samples trade distortion for
texture; the ideal is the top-left corner of each panel."""

from __future__ import annotations

import math
import os

import pandas as pd

from rocksr.config.choices import is_baseline
from rocksr.files import save_figure


def _style(row) -> tuple[str, str, str]:
    """(marker, colour, legend group) of a Table 1 row."""
    if is_baseline(row):
        return "X", "0.45", "baseline"
    if getattr(row, "array", "pred") == "mean":
        return "s", "tab:blue", "mean of K samples"
    if isinstance(getattr(row, "sampler", None), str) and row.sampler:
        return "*", "tab:red", "one sample"
    return "o", "tab:green", "deterministic model"


# where a point's label may go, in points from the point: right above, right below, left above,
# left below, further up, further down
_LABEL_OFFSETS = ((6, 5), (6, -11), (-6, 5), (-6, -11), (6, 15), (6, -21), (-6, 15), (-6, -21))


def _place_labels(fig, ax, points: list[tuple[float, float, str]]) -> None:
    """Label each point at the first offset where its text overlaps no label placed before it
    and no other point (the rows of a table often sit close: one sample beside histmatch)."""
    renderer = fig.canvas.get_renderer()
    marks = [ax.transData.transform((x, y)) for x, y, _ in points]
    placed: list = []
    for i, (x, y, name) in enumerate(points):
        text = None
        for dx, dy in _LABEL_OFFSETS:
            if text is not None:
                text.remove()
            text = ax.annotate(
                name,
                (x, y),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx > 0 else "right",
                fontsize=8,
            )
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            hits_label = any(box.overlaps(b) for b in placed)
            hits_point = any(box.contains(*m) for j, m in enumerate(marks) if j != i)
            if not (hits_label or hits_point):
                break
        placed.append(text.get_window_extent(renderer))


def plot_perception_distortion(table: pd.DataFrame, out_png: str | os.PathLike) -> None:
    """Two panels, PSNR and SSIM against the power-spectrum distance, one labelled point per row."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    if "spectrum_distance_mean" not in table.columns:
        raise ValueError("Table 1 has no spectrum_distance_mean column (an older Table 1?)")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    seen: set[str] = set()
    points: dict = {ax: [] for ax in axes}  # per panel: (x, y, label)
    for ax, (metric, label) in zip(axes, (("psnr", "PSNR (dB)"), ("ssim", "SSIM")), strict=True):
        for r in table.itertuples(index=False):
            x, y = float(r.spectrum_distance_mean), float(getattr(r, f"{metric}_mean"))
            if math.isnan(x) or math.isnan(y):
                continue
            marker, colour, group = _style(r)
            ax.scatter(
                x,
                y,
                marker=marker,
                s=90 if marker == "*" else 55,
                color=colour,
                label=None if group in seen else group,
                zorder=3,
            )
            seen.add(group)
            points[ax].append((x, y, r.model))
        ax.set_xscale("log")
        ax.set_xlabel("power-spectrum distance (decades; lower = truer texture)")
        ax.set_ylabel(f"{label} (higher = less distortion)")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_title(f"{label} vs texture")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Perception–distortion plane: every Table 1 row (best: top left)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    for ax, marks in points.items():  # once the panels have their final size and limits
        ax.autoscale_view()
        _place_labels(fig, ax, marks)
    save_figure(fig, out_png, dpi=110)
