"""Tile geometry: the base-tile grid, rotation-safe footprints and rotated views.

Conventions (pure functions, numpy only apart from OpenCV's warp):
- A base tile is the ``size x size`` window at ``(y0, x0)`` on a grid with step ``stride``.
- Its rotation-safe footprint is the ``F x F`` window, ``F = ceil(size * sqrt(2))``, placed at
  ``(y0 - off, x0 - off)`` with ``off = (F - size) // 2``. Every source pixel that a rotated view
  of the tile samples (bilinear, about the tile's centre) lies inside it, so no padding is ever
  needed.
- A view at ``angle`` degrees is the tile rotated counter-clockwise (as displayed, the sense of
  ``np.rot90`` and ``skimage.transform.rotate``) about its own centre. Angle 0 is the plain crop
  exactly; multiples of 90 are exact ``np.rot90`` of the tile; other angles are bilinear.
- Edge tiles, whose footprint leaves the image, are either dropped (``edge_tiles="skip"``) or kept
  with their angle-0 view only (``"unrotated"``), whose footprint is then the tile itself.
- With a valid-area mask (:mod:`rocksr.data.masks`, e.g. a circular field of view), the mask's
  border acts like the image's: a footprint must lie inside the mask, an ``unrotated`` edge
  tile's own square too; a tile with no view left is dropped (:func:`plan_grid` says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

EDGE_POLICIES = ("unrotated", "skip")


_SQRT2 = math.sqrt(2.0)


def footprint_offset(size: int) -> int:
    """How far the footprint reaches beyond the tile on its top/left side.

    A view samples points up to ``(size - 1) / sqrt(2)`` from the tile centre ``(size - 1) / 2``;
    the footprint must start at or before the nearest one.
    """
    return math.ceil((size - 1) * (_SQRT2 - 1.0) / 2.0 - 1e-9)


def footprint_size(size: int) -> int:
    """Side of the rotation-safe footprint: ``ceil(size * sqrt(2))`` (725 for 512), or more where
    bilinear sampling of the farthest corner (plus its right/bottom neighbour) needs it."""
    far = math.ceil((size - 1) * (_SQRT2 + 1.0) / 2.0 - 1e-9)  # farthest sample from the start
    return max(math.ceil(size * _SQRT2 - 1e-9), footprint_offset(size) + far + 2)


def grid_origins(length: int, size: int, stride: int) -> np.ndarray:
    """Top-left coordinates of the base tiles along one axis (``(L - size) // stride + 1``)."""
    if size <= 0 or stride <= 0:
        raise ValueError(f"tile size and stride must be positive, got size={size}, stride={stride}")
    if length < size:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - size + 1, stride, dtype=np.int64)


def footprint_inside(y0: int, x0: int, size: int, height: int, width: int) -> bool:
    """Whether the rotation-safe footprint of the tile at (y0, x0) lies inside the image."""
    off, f = footprint_offset(size), footprint_size(size)
    return y0 - off >= 0 and x0 - off >= 0 and y0 - off + f <= height and x0 - off + f <= width


@dataclass(frozen=True)
class TileView:
    """One planned view: where its tile is, at which angle, and the footprint it reads."""

    grid_row: int
    grid_col: int
    y0: int
    x0: int
    angle: float
    footprint_y0: int
    footprint_x0: int
    footprint_size: int
    view: str  # "rotated" (full footprint) or "edge_unrotated" (footprint = tile)


def outside_integral(mask: np.ndarray) -> np.ndarray:
    """Summed-area table of the pixels *outside* ``mask``, shape ``(H + 1, W + 1)``."""
    if mask.size >= 2**31:
        raise ValueError(f"a mask of {mask.shape} is too large for an int32 summed-area table")
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int32)
    inner = out[1:, 1:]
    np.logical_not(mask, out=inner, casting="unsafe")
    np.cumsum(inner, axis=0, out=inner)
    np.cumsum(inner, axis=1, out=inner)
    return out


def rect_inside(integral: np.ndarray, y0: int, x0: int, h: int, w: int) -> bool:
    """Whether the rectangle ``[y0, y0 + h) x [x0, x0 + w)`` has no pixel outside the mask
    (a rectangle leaving the image is not inside)."""
    H, W = integral.shape[0] - 1, integral.shape[1] - 1
    if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
        return False
    y1, x1 = y0 + h, x0 + w
    return int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]) == 0


def plan_views(
    height: int,
    width: int,
    size: int,
    stride: int,
    angles: list[float],
    edge_tiles: str = "unrotated",
    valid: np.ndarray | None = None,
) -> list[TileView]:
    """All views of one image in a fixed order: grid row, grid column, then angle as given.

    ``valid`` is :func:`outside_integral` of the sample's mask (None: every pixel is valid)."""
    return plan_grid(height, width, size, stride, angles, edge_tiles, valid)[0]


def plan_grid(
    height: int,
    width: int,
    size: int,
    stride: int,
    angles: list[float],
    edge_tiles: str = "unrotated",
    valid: np.ndarray | None = None,
) -> tuple[list[TileView], list[dict]]:
    """(views, dropped tiles) of one image in one walk over the tile grid.

    Views as :func:`plan_views`. Each base tile left without a view gives one dropped row
    ``{grid_row, grid_col, y0, x0, reason}``: ``outside_mask`` (the tile itself leaves the valid
    area) or, with ``edge_tiles: skip``, ``footprint_leaves_image`` / ``footprint_leaves_mask``.
    """
    if edge_tiles not in EDGE_POLICIES:
        raise ValueError(f"edge_tiles must be one of {EDGE_POLICIES}, got {edge_tiles!r}")
    if not angles:
        raise ValueError("the angle list is empty")
    off, f = footprint_offset(size), footprint_size(size)
    views: list[TileView] = []
    dropped: list[dict] = []
    for r, y0 in enumerate(grid_origins(height, size, stride)):
        for c, x0 in enumerate(grid_origins(width, size, stride)):
            y0i, x0i = int(y0), int(x0)
            if valid is not None and not rect_inside(valid, y0i, x0i, size, size):
                reason = "outside_mask"
            elif not footprint_inside(y0i, x0i, size, height, width):
                reason = "footprint_leaves_image"
            elif valid is not None and not rect_inside(valid, y0i - off, x0i - off, f, f):
                reason = "footprint_leaves_mask"
            else:
                views.extend(
                    TileView(r, c, y0i, x0i, float(a), y0i - off, x0i - off, f, "rotated")
                    for a in angles
                )
                continue
            if reason != "outside_mask" and edge_tiles == "unrotated":
                views.append(TileView(r, c, y0i, x0i, 0.0, y0i, x0i, size, "edge_unrotated"))
            else:
                dropped.append(
                    {"grid_row": r, "grid_col": c, "y0": y0i, "x0": x0i, "reason": reason}
                )
    return views, dropped


def rotation_matrix(size: int, angle: float, src_center: tuple[float, float]) -> np.ndarray:
    """2x3 inverse map (view pixel -> source pixel) for OpenCV's ``WARP_INVERSE_MAP``.

    The view's centre ``c = (size - 1) / 2`` maps to ``src_center`` (x, y); a view offset
    ``(dx, dy)`` maps to ``(cos dx - sin dy, sin dx + cos dy)``, which is a counter-clockwise
    rotation of the content as displayed.
    """
    t = math.radians(angle)
    cos, sin = math.cos(t), math.sin(t)
    c = (size - 1) / 2.0
    sx, sy = src_center
    return np.array(
        [[cos, -sin, sx - cos * c + sin * c], [sin, cos, sy - sin * c - cos * c]],
        dtype=np.float64,
    )


def extract_view(
    image: np.ndarray, y0: int, x0: int, size: int, angle: float, interpolation: str = "linear"
) -> np.ndarray:
    """The ``size x size`` view of the tile at (y0, x0) rotated by ``angle`` degrees.

    Reads only the tile's footprint (angle not a multiple of 90) or the tile itself.
    """
    a = float(angle) % 360.0
    k, rem = divmod(a, 90.0)
    if rem == 0.0:
        tile = image[y0 : y0 + size, x0 : x0 + size]
        if tile.shape != (size, size):
            raise ValueError(f"tile at ({y0}, {x0}) of size {size} leaves the image {image.shape}")
        return np.ascontiguousarray(np.rot90(tile, int(k)))
    off, f = footprint_offset(size), footprint_size(size)
    fy0, fx0 = y0 - off, x0 - off
    if fy0 < 0 or fx0 < 0 or fy0 + f > image.shape[0] or fx0 + f > image.shape[1]:
        raise ValueError(
            f"footprint of tile ({y0}, {x0}) leaves the image {image.shape}; rotated views of "
            "edge tiles are not allowed (no padding)"
        )
    src = image[fy0 : fy0 + f, fx0 : fx0 + f]
    c = off + (size - 1) / 2.0
    m = rotation_matrix(size, a, (c, c))
    flags = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[interpolation]
    return cv2.warpAffine(
        src, m, (size, size), flags=flags | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def extract_view_naive(image: np.ndarray, y0: int, x0: int, size: int, angle: float) -> np.ndarray:
    """Reference path: ``skimage.transform.rotate`` of the whole footprint, then a centre crop.

    Used by the benchmark to measure the speed-up of :func:`extract_view`.
    """
    from skimage.transform import rotate

    off, f = footprint_offset(size), footprint_size(size)
    fp = image[y0 - off : y0 - off + f, x0 - off : x0 - off + f]
    c = off + (size - 1) / 2.0
    rot = rotate(fp, angle, order=1, center=(c, c), preserve_range=True)
    return np.round(rot[off : off + size, off : off + size]).astype(image.dtype)
