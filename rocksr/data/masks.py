"""Where a registered pair holds valid data: the per-sample ``mask`` (pure functions).

A reconstructed micro-CT slice is valid only inside its circular field of view (FOV); outside it
the reconstruction writes one constant value (usually 0). A sample's ``mask`` says which pixels
to use, on the registered (SEM) grid:

* ``none`` (default): every pixel.
* ``auto_fov``: the largest disc inscribed in the micro-CT's non-background area. The background
  value is the most common value on the image border (it must cover at least half of the border,
  else there is no surround to find and the error says so); the non-background area's holes are
  filled (pores inside the rock may touch that value), and the disc is the maximum of its
  Euclidean distance transform (the image edge counts as boundary), shrunk by
  :data:`FOV_MARGIN_PX` pixels to stay clear of the reconstruction's soft rim.
* a path: a mask image (non-zero = valid) of the SEM's shape, or of the micro-CT's own shape when
  ``mct_scale`` up-samples it (then repeated onto the SEM grid); ``crop`` applies to it as well.

Normalization takes its percentiles inside the mask, and a tile is kept only where its footprint
lies inside it (:func:`rect_inside` over :func:`outside_integral`).
"""

from __future__ import annotations

import os

import numpy as np

from rocksr.data.images import ImageError

MASK_MODES = ("none", "auto_fov")
# the disc stays this many pixels inside the largest inscribed one (partial-volume rim)
FOV_MARGIN_PX = 2
# the most common border value must cover at least this fraction of the border pixels
MIN_BACKGROUND_BORDER = 0.5


def is_mask_path(spec: str | None) -> bool:
    """Whether a ``mask`` value names an image file (anything but ``none`` / ``auto_fov``)."""
    return bool(spec) and spec not in MASK_MODES


def border_values(img: np.ndarray) -> np.ndarray:
    """The pixels of the outermost rows and columns (each once)."""
    return np.concatenate([img[0, :], img[-1, :], img[1:-1, 0], img[1:-1, -1]])


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Boolean disc: pixels whose centre lies within ``radius`` of ``centre`` (y, x)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def auto_fov(mct: np.ndarray, where: str) -> dict:
    """The largest disc inside the micro-CT's reconstructed area, on the micro-CT's own grid:
    ``{"mode": "auto_fov", "background_value", "centre_yx", "radius_px"}``."""
    from scipy import ndimage

    border = border_values(mct)
    values, counts = np.unique(border, return_counts=True)
    k = int(np.argmax(counts))
    background, share = values[k], counts[k] / border.size
    if share < MIN_BACKGROUND_BORDER:
        raise ImageError(
            f"{where}: mask auto_fov: no constant surround to find (the most common border value, "
            f"{background:g}, covers {share:.0%} of the border; at least "
            f"{MIN_BACKGROUND_BORDER:.0%} needed): the image has no circular field of view "
            "outside which the reconstruction is constant; use mask: none, a crop, or a mask image"
        )
    data = ndimage.binary_fill_holes(mct != background)
    # pad with background so that the image edge bounds the disc too
    distance = ndimage.distance_transform_edt(np.pad(data, 1))[1:-1, 1:-1]
    best = float(distance.max())
    radius = best - FOV_MARGIN_PX
    if radius < 1:
        raise ImageError(
            f"{where}: mask auto_fov: the micro-CT has no reconstructed area (every pixel "
            f"equals the border value {background:g}, or only a sliver differs)"
        )
    # of the equally good centres (a disc clipped by the image edge), the one nearest the middle
    ys, xs = np.nonzero(distance >= best - 1e-6)
    mid = ((mct.shape[0] - 1) / 2, (mct.shape[1] - 1) / 2)
    i = int(np.argmin((ys - mid[0]) ** 2 + (xs - mid[1]) ** 2))
    return {
        "mode": "auto_fov",
        "background_value": float(background),
        "centre_yx": [float(ys[i]), float(xs[i])],
        "radius_px": radius,
    }


def sample_mask(
    spec: str | None,
    raw_mct: np.ndarray,
    sem_shape: tuple[int, int],
    factor: int,
    window: list[int] | None,
    where: str,
) -> tuple[np.ndarray | None, dict]:
    """(mask on the registered grid or None for ``none``, description) of a sample's ``mask``.

    ``raw_mct`` is the micro-CT as read (before ``mct_scale``); the mask is found or read on the
    full grid, brought onto the SEM grid (a disc is redrawn there: centre ``(c + 0.5) f - 0.5``,
    radius ``r f``) and cut by the ``crop`` ``window`` like the images.
    """
    from rocksr.data.registration import crop

    if spec in (None, "", "none"):
        return None, {"mode": "none"}
    if spec == "auto_fov":
        info = auto_fov(raw_mct, where)
        cy, cx = ((c + 0.5) * factor - 0.5 for c in info["centre_yx"])
        radius = info["radius_px"] * factor
        info = {**info, "centre_yx": [cy, cx], "radius_px": radius, "grid": "SEM, before crop"}
        mask = disc(tuple(sem_shape), (cy, cx), radius)
    else:
        mask = read_mask(spec, sem_shape, raw_mct.shape[:2], factor)
        info = {"mode": "image", "path": str(spec)}
    mask = crop(mask, window, f"{where} (mask)")
    if not mask.any():
        raise ImageError(f"{where}: the mask leaves no pixel inside the crop {window}")
    info["inside_fraction"] = float(mask.mean())
    return mask, info


def read_mask(
    path: str | os.PathLike,
    sem_shape: tuple[int, int],
    mct_shape: tuple[int, int],
    factor: int,
) -> np.ndarray:
    """A mask image as booleans (non-zero = valid) on the SEM grid (before any crop)."""
    from rocksr.data.images import read_image

    img = read_image(path, allow_constant=True)
    if img.ndim != 2:
        raise ImageError(f"{path}: a mask must be one grey image, got shape {img.shape}")
    shape = tuple(img.shape)
    if shape == tuple(sem_shape):
        mask = img != 0
    elif factor > 1 and shape == tuple(mct_shape):
        mask = np.repeat(np.repeat(img != 0, factor, axis=0), factor, axis=1)
    else:
        raw = f", or the micro-CT's {mct_shape[0]}x{mct_shape[1]}" if factor > 1 else ""
        raise ImageError(
            f"{path}: mask is {shape[0]}x{shape[1]}, but it must have the SEM's shape "
            f"{sem_shape[0]}x{sem_shape[1]}{raw}"
        )
    if not mask.any():
        raise ImageError(f"{path}: the mask is empty (no non-zero pixel)")
    return mask


def outside_integral(mask: np.ndarray) -> np.ndarray:
    """Summed-area table of the pixels *outside* ``mask``, shape ``(H + 1, W + 1)``."""
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    out[1:, 1:] = np.cumsum(np.cumsum(~mask, axis=0, dtype=np.int64), axis=1)
    return out


def rect_inside(integral: np.ndarray, y0: int, x0: int, h: int, w: int) -> bool:
    """Whether the rectangle ``[y0, y0 + h) x [x0, x0 + w)`` has no pixel outside the mask
    (a rectangle leaving the image is not inside)."""
    H, W = integral.shape[0] - 1, integral.shape[1] - 1
    if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
        return False
    y1, x1 = y0 + h, x0 + w
    return int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]) == 0


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as the 8-bit image the pipeline writes (255 = valid, 0 = outside)."""
    return np.where(mask, np.uint8(255), np.uint8(0))


def read_mask_image(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A mask written by :func:`mask_image` (``normalized/<sample>/mask.png``) as booleans,
    checked against the image ``shape`` it belongs to."""
    from rocksr.data.images import read_image

    img = read_image(path, allow_constant=True)
    if img.shape != tuple(shape):
        raise ImageError(
            f"{path}: mask is {'x'.join(map(str, img.shape))}, its images "
            f"{shape[0]}x{shape[1]}; re-run normalize"
        )
    return img != 0
