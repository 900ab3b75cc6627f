"""Bring a micro-CT onto its SEM's pixel grid: integer up-sampling and a common crop.

Real pairs often come with the micro-CT at 1/2 .. 1/4 of the SEM's pixel size. ``mct_scale``
(per sample) up-samples the micro-CT by an integer factor with a cubic spline whose pixel
areas line up with the SEM's (``scipy.ndimage.zoom(order=3, grid_mode=True, mode="nearest")``:
micro-CT pixel ``i`` covers SEM pixels ``f*i .. f*i + f - 1``); ``"auto"`` takes the factor
from the two shapes when they differ by one integer factor on both axes. ``crop: [y0, x0,
height, width]`` (SEM pixels) then cuts the same window out of both. Pure functions; reading
a pair and bringing it onto one grid is :func:`rocksr.data.pairs.read_registered_pair`.
"""

from __future__ import annotations

import numpy as np

from rocksr.data.images import ImageError


def scale_factor(spec: int | str | None, mct_shape: tuple, sem_shape: tuple, where: str) -> int:
    """The integer up-sampling factor of the micro-CT (1 = none) for a ``mct_scale`` value."""
    if spec is None:
        return 1
    if spec == "auto":
        (mh, mw), (sh, sw) = mct_shape, sem_shape
        if sh % mh == 0 and sw % mw == 0 and sh // mh == sw // mw:
            return sh // mh
        raise ImageError(
            f"{where}: mct_scale auto: the micro-CT is {mh}x{mw} and the SEM {sh}x{sw}, which "
            f"is not one integer factor on both axes ({sh / mh:.3g} x {sw / mw:.3g}); resample "
            "one of them, or crop them to a common field of view first"
        )
    f = int(spec)
    if f < 1 or f != spec:
        raise ImageError(f"{where}: mct_scale must be a positive integer or 'auto', got {spec!r}")
    return f


def upsample(arr: np.ndarray, factor: int) -> np.ndarray:
    """Cubic-spline up-sampling by an integer factor, pixel areas aligned; the input dtype is
    kept (integers rounded and clipped to their range)."""
    if factor == 1:
        return arr
    from scipy import ndimage

    out = ndimage.zoom(arr.astype(np.float64), factor, order=3, grid_mode=True, mode="nearest")
    if np.issubdtype(arr.dtype, np.integer):  # in place: one float64 copy at the output size
        info = np.iinfo(arr.dtype)
        np.rint(out, out=out)
        np.clip(out, info.min, info.max, out=out)
    return out.astype(arr.dtype, copy=False)


def centre_origin(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """Top-left corner (y0, x0) of the central ``size`` x ``size`` square of a ``shape`` image
    (``rocksr enhance --crop`` and every central crop of a figure or study use this one rule)."""
    h, w = shape[-2:]
    return (h - size) // 2, (w - size) // 2


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window of a 2-D array (the whole array if smaller)."""
    s = min(size, *a.shape)
    y0, x0 = centre_origin(a.shape, s)
    return a[y0 : y0 + s, x0 : x0 + s]


def crop(arr: np.ndarray, window: list[int] | None, where: str) -> np.ndarray:
    """``arr[y0 : y0 + height, x0 : x0 + width]``; a window outside the image is an error."""
    if window is None:
        return arr
    y0, x0, h, w = (int(v) for v in window)
    H, W = arr.shape[:2]
    if y0 < 0 or x0 < 0 or h < 1 or w < 1 or y0 + h > H or x0 + w > W:
        raise ImageError(
            f"{where}: crop [{y0}, {x0}, {h}, {w}] (y0, x0, height, width) does not lie inside "
            f"the {H}x{W} image"
        )
    return arr[y0 : y0 + h, x0 : x0 + w]


def register(
    mct: np.ndarray,
    sem: np.ndarray,
    mct_scale: int | str | None,
    window: list[int] | None,
    where: str,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(micro-CT on the SEM grid, SEM, factor used): up-sample, then crop both."""
    f = scale_factor(mct_scale, mct.shape, sem.shape, where)
    mct = upsample(mct, f)
    return crop(mct, window, f"{where} (micro-CT)"), crop(sem, window, f"{where} (SEM)"), f
