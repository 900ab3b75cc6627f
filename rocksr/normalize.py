"""Contrast normalization: a reproducible replacement for the study's manual FIJI step.

Per modality: a percentile stretch (robust to outliers and to 8/16-bit/float inputs) to [0, 1],
optionally CLAHE (scikit-image's ``equalize_adapthist``), then 8-bit. Pure functions.
"""

from __future__ import annotations

import numpy as np

NORMALIZE_DEFAULTS: dict = {
    "p_low": 0.5,
    "p_high": 99.5,
    "clahe": False,
    "clahe_clip": 0.01,
    "clahe_kernel": 64,
}


def stretch_limits(arr: np.ndarray, p_low: float, p_high: float) -> tuple[float, float]:
    """Intensity values at the given percentiles (the stretch's black and white points)."""
    if not 0.0 <= p_low < p_high <= 100.0:
        raise ValueError(
            f"percentiles must satisfy 0 <= p_low < p_high <= 100, got {p_low}, {p_high}"
        )
    lo, hi = np.percentile(arr, [p_low, p_high])
    return float(lo), float(hi)


def normalize_image(
    arr: np.ndarray,
    p_low: float = 0.5,
    p_high: float = 99.5,
    clahe: bool = False,
    clahe_clip: float = 0.01,
    clahe_kernel: int = 64,
) -> np.ndarray:
    """Percentile-stretch ``arr`` to 8 bits, optionally followed by CLAHE.

    A constant image (``hi == lo``) maps to 0 everywhere rather than dividing by zero.
    """
    lo, hi = stretch_limits(arr, p_low, p_high)
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    np.clip(out, 0.0, 1.0, out=out)
    if clahe:
        from skimage.exposure import equalize_adapthist

        out = equalize_adapthist(out, kernel_size=clahe_kernel, clip_limit=clahe_clip).astype(
            np.float32
        )
    return np.round(out * 255.0).astype(np.uint8)


def histogram(arr: np.ndarray, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram over the array's own value range (works for uint8, uint16 and float)."""
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return counts, edges
