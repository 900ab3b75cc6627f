"""Reading and checking the raw registered images (TIFF via tifffile, PNG via Pillow)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rocksr.errors import RocksrError
from rocksr.files import _PNG_SUFFIXES, _TIFF_SUFFIXES

log = logging.getLogger(__name__)


class ImageError(RocksrError, ValueError):
    """A raw input image cannot be used; the message names the file and the problem."""


def option(key: str | None, what: str) -> str:
    """The sample setting that picks a ``what`` (page, series) of the ``key`` image (mct, sem),
    as messages name it; ``key`` None: both."""
    return f"`{key}_{what}`" if key else f"`mct_{what}`/`sem_{what}`"


def _choose_hint(key: str | None, what: str, choose: str) -> str:
    """What to set when a file holds several images: the key's page/series setting, or for a
    mask (which has none) a single-image file."""
    if key == "mask":
        return (
            "`mask` takes a single 2-D image (a sample has no mask page setting): save the "
            "mask as its own file"
        )
    return f"set {option(key, what)} in the sample's config to choose {choose}"


def _to_gray(arr: np.ndarray, path: Path, hint: str = "") -> np.ndarray:
    """Collapse an RGB(A)-looking array to one channel when all colour channels are equal
    (``hint`` is added to the colour and alpha messages)."""
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if arr.shape[-1] == 4 and not np.all(arr[..., 3] == arr[..., 3].flat[0]):
            raise ImageError(
                f"{path}: has a non-constant alpha channel; expected a grey image{hint}"
            )
        if arr.shape[-1] == 4 and arr[..., 3].flat[0] == 0:
            raise ImageError(f"{path}: is fully transparent (alpha 0 everywhere); nothing to read")
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0])
        raise ImageError(
            f"{path}: is a colour image (RGB channels differ); expected a grey image "
            f"(or RGB with three equal channels){hint}"
        )
    raise ImageError(
        f"{path}: unsupported channel layout, array shape {arr.shape}; expected (H, W) or "
        "(H, W, 3|4) with equal colour channels"
    )


class _HeldLogRecords(logging.Handler):
    """Holds tifffile's log records during a read (see :func:`_tifffile_log_held`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _tifffile_log_held(path: Path) -> Iterator[None]:
    """tifffile logs ``ERROR ... missing data ByteCounts``-style lines for files it then reads
    correctly, which mislead when a real error follows. Hold its records during a read: a read
    that succeeds turns them into DEBUG lines; a failed read lets them through unchanged."""
    logger = logging.getLogger("tifffile")
    held = _HeldLogRecords()
    propagate = logger.propagate
    logger.addHandler(held)
    logger.propagate = False
    ok = False
    try:
        yield
        ok = True
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate
        for r in held.records:
            if ok:
                log.debug("%s: tifffile (read fine): %s", path, r.getMessage())
            else:
                logger.handle(r)


def _read_tiff(path: Path, page: int | None, series: int | None = None) -> np.ndarray:
    with _tifffile_log_held(path):
        return _read_tiff_held(path, page, series)


def _read_tiff_held(path: Path, page: int | None, series: int | None = None) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        chosen = _chosen_tiff_image(tif, path, page, series, None)
        first = chosen if page is not None else chosen.pages[0]
        return _tiff_gray(chosen.asarray(), first, chosen.axes, path)


def _chosen_tiff_image(
    tif: object, path: Path, page: int | None, series: int | None, key: str | None
) -> object:
    """The page or series of an open TIFF that ``page``/``series`` choose (the first series when
    neither does), checked: one choice, within range, one series unless one is chosen, and not a
    stack of pages where one 2-D image is wanted. ``key``: the sample's image the message names."""
    n_pages, all_series = len(tif.pages), tif.series
    if page is not None:
        if series is not None:
            raise ImageError(f"{path}: give a page or a series, not both")
        if not 0 <= page < n_pages:
            raise ImageError(
                f"{path}: {option(key, 'page')} {page} is beyond the file's {n_pages} page(s) "
                "(pages count from 0)"
            )
        return tif.pages[page]
    if series is None and len(all_series) > 1:
        shapes = ", ".join(f"{i}: {tuple(s.shape)}" for i, s in enumerate(all_series))
        raise ImageError(
            f"{path}: holds {len(all_series)} image series ({shapes}); "
            + _choose_hint(key, "series", "one")
        )
    if series is not None and not 0 <= series < len(all_series):
        raise ImageError(
            f"{path}: {option(key, 'series')} {series} is beyond the file's "
            f"{len(all_series)} series"
        )
    chosen = all_series[series or 0]
    stack = _stack_problem(tuple(chosen.shape), chosen.axes, path, key)
    if stack:
        raise ImageError(stack)
    return chosen


def _stack_problem(shape: tuple, axes: str, path: Path, key: str | None) -> str | None:
    """A stack of pages (more than the two image axes once the samples axis ``S`` of an RGB(A)
    pixel is left out), told apart from a colour image by the TIFF's axes, not by its shape."""
    dims = [n for n, a in zip(shape, axes, strict=False) if a != "S" and (n > 1 or a in "YX")]
    if len(dims) <= 2:
        return None
    return (
        f"{path}: is a stack of {math.prod(dims[:-2])} pages (shape {tuple(shape)}); "
        + _choose_hint(key, "page", "the slice")
    )


def _tiff_gray(arr: np.ndarray, page: object, axes: str, path: Path) -> np.ndarray:
    """A TIFF page's pixels as one grey channel: samples per pixel are colour only when the
    page says RGB (photometric); planes stored apart get a hint (tifffile writes a (3|4, H, W)
    array, a stack of 3 or 4 slices, as one RGB(A) page unless told photometric='minisblack')."""
    import tifffile

    arr = _planar_to_last(arr, page)
    if arr.ndim != 3 or "S" not in axes:
        return _to_gray(arr, path)
    photometric = getattr(page, "photometric", None)
    if photometric != tifffile.PHOTOMETRIC.RGB:
        name = getattr(photometric, "name", photometric)
        raise ImageError(
            f"{path}: unsupported channel layout, {arr.shape[-1]} samples per pixel with "
            f"photometric {name}; expected a grey image (one sample per pixel) or RGB(A)"
        )
    hint = ""
    if getattr(page, "planarconfig", None) == tifffile.PLANARCONFIG.SEPARATE:
        n = arr.shape[-1]
        hint = (
            f"; its TIFF header says one RGB{'A' if n == 4 else ''} page of {n} separate "
            f"planes, which is also how tifffile writes a stack of {n} grey slices (a ({n}, H, "
            "W) array) unless told photometric='minisblack': if the planes are slices, save "
            f"them as {n} pages and {_choose_hint(None, 'page', 'one')}"
        )
    return _to_gray(arr, path, hint)


def _planar_to_last(arr: np.ndarray, page: object) -> np.ndarray:
    """A planar (separate-planes) RGB(A) page (3|4, H, W) as (H, W, 3|4)."""
    import tifffile

    planar = getattr(page, "planarconfig", None) == tifffile.PLANARCONFIG.SEPARATE
    if planar and arr.ndim == 3 and arr.shape[0] in (3, 4):
        return np.moveaxis(arr, 0, -1)
    return arr


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # forces decoding: truncated files fail here, not later
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA")
        if im.mode == "LA":
            im = im.convert("RGBA")
        arr = np.asarray(im)
    return arr


def read_image(
    path: str | os.PathLike,
    page: int | None = None,
    series: int | None = None,
    *,
    allow_constant: bool = False,
) -> np.ndarray:
    """Read one 2-D grey image (TIFF 8/16-bit/float, single page, a chosen page or series; PNG).

    RGB(A) with equal channels becomes grey. Every problem raises :class:`ImageError` naming
    the file: missing, unreadable or truncated, unsupported format or channel layout, NaN/inf,
    and a constant image unless ``allow_constant`` (masks may be).
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: file does not exist")
    if not p.is_file():
        raise ImageError(f"{p}: is not a regular file")
    suffix = p.suffix.lower()
    try:
        if suffix in _TIFF_SUFFIXES:
            arr = _read_tiff(p, page, series)
        elif suffix in _PNG_SUFFIXES:
            if page not in (None, 0) or series not in (None, 0):
                raise ImageError(f"{p}: PNG has one image; `page`/`series` must be unset or 0")
            arr = _read_png(p)
        else:
            raise ImageError(f"{p}: unsupported file type {suffix!r}; expected .tif, .tiff or .png")
    except ImageError:
        raise
    except Exception as exc:  # tifffile/Pillow raise many types for broken files
        raise ImageError(
            f"{p}: unreadable or truncated image ({type(exc).__name__}: {exc})"
        ) from exc

    arr = _to_gray(np.asarray(arr), p)
    if arr.ndim != 2:
        raise ImageError(f"{p}: expected a 2-D image, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageError(f"{p}: unsupported pixel type {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ImageError(f"{p}: contains {n_bad} NaN/inf pixel(s)")
    if arr.size == 0:
        raise ImageError(f"{p}: image is empty")
    if not allow_constant and arr.min() == arr.max():
        raise ImageError(
            f"{p}: is constant (every pixel = {arr.flat[0]}); there is nothing to learn from it"
        )
    return arr


def check_pair(
    mct: np.ndarray,
    sem: np.ndarray,
    mct_path: str | os.PathLike,
    sem_path: str | os.PathLike,
    min_size: int,
) -> None:
    """Check a registered pair before anything is written: same shape, large enough."""
    if mct.shape != sem.shape:
        raise ImageError(
            f"{mct_path} and {sem_path}: shapes differ ({mct.shape} vs {sem.shape}); "
            "the pair must be registered pixel to pixel"
        )
    for arr, path in ((mct, mct_path), (sem, sem_path)):
        if min(arr.shape) < min_size:
            raise ImageError(
                f"{path}: image {arr.shape[0]}x{arr.shape[1]} is smaller than one rotation-safe "
                f"footprint ({min_size} px); use a smaller tile size or a larger image"
            )


def image_shape(
    path: str | os.PathLike,
    page: int | None = None,
    series: int | None = None,
    *,
    key: str | None = None,
) -> tuple[int, int]:
    """(height, width) of the 2-D image :func:`read_image` would return, from the file's
    header only (no pixels are decoded); problems raise :class:`ImageError` naming the file
    and, with ``key`` (``mct``, ``sem`` or ``mask``), the sample setting to change."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: file does not exist")
    suffix = p.suffix.lower()
    if suffix not in _TIFF_SUFFIXES | _PNG_SUFFIXES:
        raise ImageError(f"{p}: unsupported file type {suffix!r}; expected .tif, .tiff or .png")
    if suffix in _PNG_SUFFIXES:
        for what, index in (("page", page), ("series", series)):
            if index not in (None, 0):
                raise ImageError(
                    f"{p}: {option(key, what)} is {index}, but a PNG holds one image; unset it"
                )
    try:
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            with _tifffile_log_held(p), tifffile.TiffFile(p) as tif:
                shape, axes = _tiff_header_shape(tif, p, page, series, key)
        else:
            from PIL import Image

            with Image.open(p) as im:
                shape, axes = (im.height, im.width), "YX"
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 (readers raise many types for broken headers)
        raise ImageError(f"{p}: unreadable image header ({type(exc).__name__}: {exc})") from exc
    dims = [int(n) for n, a in zip(shape, axes, strict=False) if a != "S"]
    return dims[-2], dims[-1]


def _tiff_header_shape(
    tif: object, p: Path, page: int | None, series: int | None, key: str | None
) -> tuple[tuple, str]:
    """(shape, axes) of the chosen page or series of an open TIFF, checking the choice."""
    chosen = _chosen_tiff_image(tif, p, page, series, key)
    return tuple(chosen.shape), chosen.axes
