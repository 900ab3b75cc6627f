"""Where a registered pair holds valid data: the per-sample ``mask``.

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

The values ``mask`` takes are named in :mod:`rocksr.config.mask` (re-exported here). The
functions here are pure but for :func:`read_mask` and :func:`read_mask_image` (and
:func:`sample_mask` given a path), which read a mask image.

Normalization takes its percentiles inside the mask, and a tile is kept only where its footprint
lies inside it (:func:`rocksr.data.tiling.rect_inside` over
:func:`rocksr.data.tiling.outside_integral`, kept there so that the tile geometry, which training
imports, does not depend on this module).
"""

from __future__ import annotations

import os

import numpy as np

# the mask setting's vocabulary, re-exported for the callers that ask this module
from rocksr.config.mask import MASK_MODES as MASK_MODES
from rocksr.config.mask import is_mask_path as is_mask_path
from rocksr.config.mask import mask_spec_problem as mask_spec_problem
from rocksr.data.images import ImageError, read_image
from rocksr.data.registration import crop

# the disc stays this many pixels inside the largest inscribed one (partial-volume rim)
FOV_MARGIN_PX = 2
# the most common border value must cover at least this fraction of the border pixels
MIN_BACKGROUND_BORDER = 0.5


def border_values(img: np.ndarray) -> np.ndarray:
    """The pixels of the outermost rows and columns (each once)."""
    return np.concatenate([img[0, :], img[-1, :], img[1:-1, 0], img[1:-1, -1]])


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Boolean disc: pixels whose centre lies within ``radius`` of ``centre`` (y, x)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def auto_fov(mct: np.ndarray, where: str) -> dict:
    """The largest disc inside the micro-CT's reconstructed area, on the micro-CT's own grid:
    ``{"mode": "auto_fov", "background_value", "centre_yx", "radius_px", "covers"}``.

    The centre is the mean of the distance transform's maxima (sub-pixel: an even-sized disc
    has four), the radius the distance from it to the nearest non-reconstructed pixel centre
    (the image edge counts) less :data:`FOV_MARGIN_PX`; ``covers`` is the fraction of the
    reconstructed area inside the disc (low for a reconstruction that is not a disc)."""
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
    # pad with background so that the image edge bounds the disc too
    data = np.pad(ndimage.binary_fill_holes(mct != background), 1)
    distance = ndimage.distance_transform_edt(data)
    best = float(distance.max())
    if best - FOV_MARGIN_PX < 1:
        raise ImageError(
            f"{where}: mask auto_fov: the micro-CT has no reconstructed area (every pixel "
            f"equals the border value {background:g}, or only a sliver differs)"
        )
    ys, xs = np.nonzero(distance >= best - 1e-6)
    cy, cx = float(ys.mean()), float(xs.mean())
    if not data[round(cy), round(cx)]:  # maxima in separate places: the one nearest the middle
        mid = ((data.shape[0] - 1) / 2, (data.shape[1] - 1) / 2)
        i = int(np.argmin((ys - mid[0]) ** 2 + (xs - mid[1]) ** 2))
        cy, cx = float(ys[i]), float(xs[i])
    # the nearest non-reconstructed pixel touches the reconstruction (4-neighbours)
    by, bx = np.nonzero(~data & ndimage.binary_dilation(data))
    radius = float(np.sqrt(((by - cy) ** 2 + (bx - cx) ** 2).min())) - FOV_MARGIN_PX
    cy, cx = cy - 1, cx - 1  # undo the padding
    covers = float(disc(mct.shape, (cy, cx), radius).sum() / max(1, int(data.sum())))
    return {
        "mode": "auto_fov",
        "background_value": float(background),
        "centre_yx": [cy, cx],
        "radius_px": radius,
        "covers": covers,
    }


# a disc covering less of the reconstructed area than this warns (not a circular FOV)
MIN_FOV_COVER = 0.7


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


def mask_shape_problem(
    shape: tuple[int, ...], sem_shape: tuple[int, int], mct_shape: tuple[int, int], factor: int
) -> str | None:
    """Why a mask image of ``shape`` fits neither the SEM's grid nor, when ``mct_scale``
    up-samples the micro-CT (``factor`` > 1), the micro-CT's own (None: it fits one)."""
    shape, sem_shape, mct_shape = tuple(shape), tuple(sem_shape), tuple(mct_shape)
    if shape == sem_shape or (factor > 1 and shape == mct_shape):
        return None
    raw = f", or the micro-CT's {mct_shape[0]}x{mct_shape[1]}" if factor > 1 else ""
    return (
        f"mask is {shape[0]}x{shape[1]}, but it must have the SEM's shape "
        f"{sem_shape[0]}x{sem_shape[1]}{raw}"
    )


def read_mask(
    path: str | os.PathLike,
    sem_shape: tuple[int, int],
    mct_shape: tuple[int, int],
    factor: int,
) -> np.ndarray:
    """A mask image as booleans (non-zero = valid) on the SEM grid (before any crop)."""
    img = read_image(path, allow_constant=True)
    problem = mask_shape_problem(img.shape, sem_shape, mct_shape, factor)
    if problem:
        raise ImageError(f"{path}: {problem}")
    if tuple(img.shape) == tuple(sem_shape):
        mask = img != 0
    else:  # the micro-CT's grid
        mask = np.repeat(np.repeat(img != 0, factor, axis=0), factor, axis=1)
    if not mask.any():
        raise ImageError(f"{path}: the mask is empty (no non-zero pixel)")
    return mask


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as the 8-bit image the pipeline writes (255 = valid, 0 = outside)."""
    return np.where(mask, np.uint8(255), np.uint8(0))


def read_mask_image(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A mask written by :func:`mask_image` (``normalized/<sample>/mask.png``) as booleans,
    checked against the image ``shape`` it belongs to."""
    img = read_image(path, allow_constant=True)
    if img.shape != tuple(shape):
        raise ImageError(
            f"{path}: mask is {'x'.join(map(str, img.shape))}, its images "
            f"{shape[0]}x{shape[1]}; re-run normalize"
        )
    return img != 0
