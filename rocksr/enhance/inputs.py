"""The input of ``rocksr enhance``: a 2-D image, TIFF stack pages or a Zarr array, read slice
by slice (:func:`open_input`), optionally up-sampled onto the model's grid (:class:`ScaledSource`),
and the stack-wide black/white points of its contrast stretch (:func:`stack_limits`)."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rocksr.enhance.errors import EnhanceError, one_line
from rocksr.enhance.outputs import TIFF_SUFFIXES

log = logging.getLogger(__name__)

_SUBSAMPLE_MAX = 1 << 24  # pixels used for the black/white points of a float stack


def parse_pages(spec: str | None, n_pages: int, path: str | os.PathLike) -> tuple[int, int]:
    """``"a-b"`` (0-based, inclusive) or ``"a"`` -> ``(a, b + 1)``; None -> the whole stack.

    Raises :class:`EnhanceError` naming ``path`` for bad syntax or a range outside
    ``0 .. n_pages - 1``."""
    if spec is None:
        return 0, n_pages
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(spec))
    if not m:
        raise EnhanceError(
            f"{path}: page range {spec!r} is not understood; give FIRST-LAST (0-based, "
            "inclusive, e.g. 100-199) or one page number"
        )
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) is not None else a
    if b < a:
        raise EnhanceError(f"{path}: page range {spec!r} ends before it starts")
    if b >= n_pages:
        raise EnhanceError(
            f"{path}: page range {a}-{b} is outside the stack, which has {n_pages} page(s) "
            f"(0-{n_pages - 1})"
        )
    return a, b + 1


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's percentile interpolation, bit for bit
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


def stack_limits(
    read: Callable[[int], np.ndarray],
    n: int,
    p_low: float,
    p_high: float,
    mask: np.ndarray | None = None,
) -> tuple[float, float, str]:
    """Black/white points (percentiles ``p_low``/``p_high``) over ``n`` slices read one at a
    time (only their pixels inside ``mask``, when given): exact (streamed histogram, equal to
    ``np.percentile`` of the whole stack) for uint8/uint16/bool, else from a regular subsample of
    at most 2**24 pixels. Returns ``(lo, hi, how)``."""
    if mask is not None:
        inner = read

        def read(z: int) -> np.ndarray:
            return inner(z)[mask]

    if not 0.0 <= p_low < p_high <= 100.0:
        raise ValueError(
            f"percentiles must satisfy 0 <= p_low < p_high <= 100, got {p_low}, {p_high}"
        )
    first = read(0)
    if first.dtype in (np.uint8, np.uint16, np.bool_):
        hist = np.zeros(65536 if first.dtype == np.uint16 else 256, dtype=np.int64)
        for z in range(n):
            a = first if z == 0 else read(z)
            hist += np.bincount(a.ravel().astype(np.intp, copy=False), minlength=hist.size)
        cum = np.cumsum(hist)
        total = int(cum[-1])
        out = []
        for q in (p_low, p_high):
            idx = (q / 100.0) * (total - 1)
            i = int(math.floor(idx))
            t = idx - i
            a = float(np.searchsorted(cum, i, side="right"))
            b = float(np.searchsorted(cum, min(i + 1, total - 1), side="right"))
            out.append(_lerp(a, b, t))
        return out[0], out[1], f"exact, over {n} slice(s)"
    step = max(1, math.ceil(math.sqrt(first.size * n / _SUBSAMPLE_MAX)))
    if first.ndim == 1:  # masked pixels: a regular subsample of the same density
        parts = [(first if z == 0 else read(z))[:: step * step] for z in range(n)]
    else:
        parts = [(first if z == 0 else read(z))[::step, ::step].ravel() for z in range(n)]
    lo, hi = np.percentile(np.concatenate(parts), [p_low, p_high])
    how = f"over {n} slice(s)" + (f", every {step}th pixel in y and x" if step > 1 else "")
    return float(lo), float(hi), how


def _gray(arr: np.ndarray, path: Path, where: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            arr = np.ascontiguousarray(rgb[..., 0])
        else:
            raise EnhanceError(
                f"{path}: {where} is a colour image (RGB channels differ); expected a grey image"
            )
    if arr.ndim != 2:
        raise EnhanceError(f"{path}: {where} is not a 2-D grey image (shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise EnhanceError(f"{path}: {where} has unsupported pixel type {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise EnhanceError(f"{path}: {where} contains NaN/inf pixels")
    return arr


class InputSource:
    """A 2-D image or a selection of slices, read one slice at a time.

    ``shape``: (H, W); ``n``: number of slices (1 for 2-D); ``stack``: whether the output is a
    stack; ``first``: the selected page/z index of slice 0; ``read(i)``: slice ``i`` (2-D,
    grey, checked)."""

    def __init__(
        self,
        path: Path,
        shape: tuple[int, int],
        n: int,
        stack: bool,
        dtype: np.dtype,
        reader: Callable[[int], np.ndarray],
        first: int = 0,
        closer: Callable[[], None] | None = None,
    ) -> None:
        self.path, self.shape, self.n, self.stack = path, shape, n, stack
        self.dtype, self._reader, self.first, self._closer = dtype, reader, first, closer

    def read(self, i: int) -> np.ndarray:
        a = self._reader(i)
        if a.shape != self.shape:
            raise EnhanceError(
                f"{self.path}: slice {self.first + i} has shape {a.shape}, slice "
                f"{self.first} {self.shape}; all slices of a stack must have one shape"
            )
        return a

    def close(self) -> None:
        if self._closer is not None:
            self._closer()


class _Derived:
    """A source read through another (``inner``): the same file, slices, pages and type."""

    def __init__(self, inner: InputSource | _Derived) -> None:
        self.inner = inner
        self.path, self.n, self.stack, self.dtype, self.first = (
            inner.path,
            inner.n,
            inner.stack,
            inner.dtype,
            inner.first,
        )

    def close(self) -> None:
        self.inner.close()


class ScaledSource(_Derived):
    """An :class:`InputSource` up-sampled by an integer ``factor`` on every read, exactly as
    training's ``mct_scale`` brought the micro-CT onto the SEM grid
    (:func:`rocksr.data.registration.upsample`)."""

    def __init__(self, src: InputSource, factor: int) -> None:
        super().__init__(src)
        self.factor = int(factor)
        self.shape = (src.shape[0] * self.factor, src.shape[1] * self.factor)
        self._last: tuple[int, np.ndarray] | None = None

    def read(self, i: int) -> np.ndarray:
        """Slice ``i`` up-sampled; the last one is kept (the black/white points and the output
        read slice 0 in turn, and up-sampling is the costly part)."""
        from rocksr.data.registration import upsample

        if self._last is None or self._last[0] != i:
            self._last = (i, upsample(self.inner.read(i), self.factor))
        return self._last[1]


class CroppedSource(_Derived):
    """A :class:`Source`'s central ``size`` x ``size`` square of every slice: ``rocksr enhance
    --crop``, to try a model on part of a large slice (the demo's whole-slice figure shows
    only the centre). ``origin`` is the square's top-left corner in the source's pixels."""

    def __init__(self, src: InputSource | ScaledSource, size: int) -> None:
        h, w = src.shape
        if size > min(h, w):
            raise EnhanceError(
                f"{src.path}: --crop {size} is larger than the input ({h}x{w} after --mct-scale)"
            )
        from rocksr.data.registration import centre_origin

        super().__init__(src)
        self.size = int(size)
        self.origin = centre_origin(src.shape, self.size)
        self.shape = (self.size, self.size)

    def read(self, i: int) -> np.ndarray:
        y, x = self.origin
        return self.inner.read(i)[y : y + self.size, x : x + self.size]


Source = InputSource | ScaledSource | CroppedSource
"""An input as ``enhance`` reads it: as stored, up-sampled onto the model's grid, cropped."""


def crop_input(src: InputSource | ScaledSource, size: int | None) -> Source:
    """``src``'s central ``size`` x ``size`` square (a :class:`CroppedSource`, logged), or
    ``src`` itself for None."""
    if size is None:
        return src
    cropped = CroppedSource(src, size)
    log.info(
        "%s: enhancing only the central %dx%d square (top-left corner at y=%d, x=%d)",
        src.path,
        size,
        size,
        *cropped.origin,
    )
    return cropped


def scale_input(src: InputSource, factor: int) -> Source:
    """``src`` up-sampled by ``factor`` (a :class:`ScaledSource`, logged), or ``src`` for 1."""
    if factor <= 1:
        return src
    scaled = ScaledSource(src, factor)
    log.info(
        "%s: up-sampled x%d onto the model's grid (%dx%d; the training pairs' mct_scale; "
        "--mct-scale 1 if the input is already on the SEM grid)",
        src.path,
        factor,
        *scaled.shape,
    )
    return scaled


def _is_zarr(p: Path) -> bool:
    return p.suffix.lower() == ".zarr" or (
        p.is_dir() and any((p / f).is_file() for f in ("zarr.json", ".zarray", ".zgroup"))
    )


def _open_zarr(p: Path, pages: str | None) -> InputSource:
    import zarr

    try:
        node = zarr.open(str(p), mode="r")
    except Exception as exc:  # noqa: BLE001 (zarr raises many types for a broken store)
        raise EnhanceError(f"{p}: not a readable Zarr array ({one_line(exc)})") from exc
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        ms = (attrs.get("ome") or {}).get("multiscales") or attrs.get("multiscales")
        if ms:
            node = node[ms[0]["datasets"][0]["path"]]
        else:
            names = sorted(k for k, _ in node.arrays())
            raise EnhanceError(
                f"{p}: is a Zarr group, not an array; give the array inside it"
                + (f" (e.g. {p / names[0]}; arrays: {', '.join(names)})" if names else "")
            )
    arr = node
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise EnhanceError(
            f"{p}: array of shape {arr.shape} looks like a colour image; expected a grey "
            "(y, x) image or a (z, y, x) stack"
        )
    if arr.ndim == 2:
        if pages is not None:
            raise EnhanceError(f"{p}: is a 2-D array; a page range needs a (z, y, x) stack")
        return InputSource(
            p,
            tuple(arr.shape),
            1,
            False,
            np.dtype(arr.dtype),
            lambda i: _gray(np.asarray(arr[:]), p, "the array"),
        )
    if arr.ndim != 3:
        raise EnhanceError(f"{p}: array has {arr.ndim} dimensions; expected (y, x) or (z, y, x)")
    a, b = parse_pages(pages, arr.shape[0], p)
    return InputSource(
        p,
        tuple(arr.shape[1:]),
        b - a,
        True,
        np.dtype(arr.dtype),
        lambda i: _gray(np.asarray(arr[a + i]), p, f"slice {a + i}"),
        first=a,
    )


def _open_tiff_stack(p: Path, pages: str | None) -> InputSource | None:
    """An InputSource over the TIFF's pages, or None for a single-page TIFF without a range."""
    import tifffile

    try:
        tif = tifffile.TiffFile(p)
        n_pages = len(tif.pages)
    except Exception as exc:  # noqa: BLE001 (tifffile raises many types for broken files)
        raise EnhanceError(f"{p}: unreadable or truncated TIFF ({one_line(exc)})") from exc
    if n_pages == 1 and pages is None:
        tif.close()
        return None
    try:
        a, b = parse_pages(pages, n_pages, p)

        def read(i: int) -> np.ndarray:
            try:
                data = tif.pages[a + i].asarray()
            except Exception as exc:  # noqa: BLE001
                raise EnhanceError(
                    f"{p}: page {a + i} is unreadable or truncated ({one_line(exc)})"
                ) from exc
            return _gray(np.asarray(data), p, f"page {a + i}")

        first = read(0)
    except BaseException:
        tif.close()
        raise
    return InputSource(p, first.shape, b - a, True, first.dtype, read, first=a, closer=tif.close)


def open_input(input: str | os.PathLike, pages: str | None = None) -> InputSource:
    """Open and check the input (the formats: ``docs/enhance.md``); raises
    :class:`EnhanceError` or :class:`rocksr.data.images.ImageError`, both naming the file."""
    from rocksr.data.images import read_image

    p = Path(input)
    if not p.exists():
        raise EnhanceError(f"{p}: input does not exist")
    if _is_zarr(p):
        return _open_zarr(p, pages)
    if p.suffix.lower() in TIFF_SUFFIXES and p.is_file():
        src = _open_tiff_stack(p, pages)
        if src is not None:
            return src
    elif pages is not None:
        raise EnhanceError(f"{p}: holds one image; a page range needs a TIFF stack or Zarr array")
    img = read_image(p)
    return InputSource(p, img.shape, 1, False, img.dtype, lambda i: img)
