"""Contrast normalization: a reproducible replacement for the study's manual FIJI step.

Per modality: a percentile stretch (robust to outliers and to 8/16-bit/float inputs) to [0, 1],
optionally CLAHE (scikit-image's ``equalize_adapthist``), then 8-bit. Pure functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rocksr.config.merge import section_defaults
from rocksr.config.normalize import NormalizeModality

NORMALIZE_DEFAULTS: dict = section_defaults(NormalizeModality)


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
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Percentile-stretch ``arr`` to 8 bits, optionally followed by CLAHE.

    The percentiles are taken over the pixels where ``mask`` is true (all pixels without one);
    every pixel is stretched. A constant image (``hi == lo``) maps to 0 everywhere rather than
    dividing by zero.
    """
    lo, hi = stretch_limits(arr if mask is None else arr[mask], p_low, p_high)
    return stretch_to_uint8(arr, lo, hi, clahe, clahe_clip, clahe_kernel)


def stretch_to_uint8(
    arr: np.ndarray,
    lo: float,
    hi: float,
    clahe: bool = False,
    clahe_clip: float = 0.01,
    clahe_kernel: int = 64,
) -> np.ndarray:
    """Stretch black point ``lo`` .. white point ``hi`` to 0..255, optionally with CLAHE (the
    arithmetic of :func:`normalize_image`, which calls it with the percentile limits)."""
    if arr.dtype == np.float64:
        # float64 stays float64 (values like 1e-50 would underflow to 0 in float32)
        out = (arr - lo) / (hi - lo) if hi > lo else np.zeros(arr.shape, np.float64)
    else:
        # the arithmetic of earlier versions, kept bit for bit: changing it would change the
        # normalized images by a grey level here and there, and so every tile, the training
        # fingerprint and every trained model
        scale = 1.0 / (hi - lo) if hi > lo else 0.0
        out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(scale)
    np.clip(out, 0.0, 1.0, out=out)
    out = out.astype(np.float32)
    if clahe:
        from skimage.exposure import equalize_adapthist

        out = equalize_adapthist(out, kernel_size=clahe_kernel, clip_limit=clahe_clip).astype(
            np.float32
        )
    return np.round(out * 255.0).astype(np.uint8)


def stretch_fixed(arr: np.ndarray, lo: float, hi: float, **params: Any) -> np.ndarray:
    """:func:`stretch_to_uint8` with a normalization record's parameters (``p_low``/``p_high``
    are ignored: the limits are given), so ``stretch_fixed(a, *stretch_limits(a, pl, ph),
    **params)`` equals ``normalize_image(a, pl, ph, **params)``."""
    keep = {k: params[k] for k in ("clahe", "clahe_clip", "clahe_kernel") if k in params}
    return stretch_to_uint8(arr, lo, hi, **keep)


# fewer distinct grey levels than this in a normalized image warns (posterized contrast)
MIN_GREY_LEVELS = 32


def grey_levels(img: np.ndarray) -> int:
    """Number of distinct values of a uint8 image."""
    return int(np.count_nonzero(np.bincount(img.ravel(), minlength=256)))


def histogram(arr: np.ndarray, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram over the array's own value range (works for uint8, uint16 and float)."""
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    return counts, edges
