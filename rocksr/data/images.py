"""Reading and checking the raw registered images (TIFF via tifffile, PNG via Pillow)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rocksr.errors import RocksrError
from rocksr.files import _PNG_SUFFIXES, _TIFF_SUFFIXES

log = logging.getLogger(__name__)


class ImageError(RocksrError, ValueError):
    """A raw input image cannot be used; the message names the file and the problem."""


def _to_gray(arr: np.ndarray, path: Path) -> np.ndarray:
    """Collapse an RGB(A)-looking array to one channel when all colour channels are equal."""
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if arr.shape[-1] == 4 and not np.all(arr[..., 3] == arr[..., 3].flat[0]):
            raise ImageError(f"{path}: has a non-constant alpha channel; expected a grey image")
        if arr.shape[-1] == 4 and arr[..., 3].flat[0] == 0:
            raise ImageError(f"{path}: is fully transparent (alpha 0 everywhere); nothing to read")
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0])
        raise ImageError(
            f"{path}: is a colour image (RGB channels differ); expected a grey image "
            "(or RGB with three equal channels)"
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
        n_pages, all_series = len(tif.pages), tif.series
        if page is not None:
            if series is not None:
                raise ImageError(f"{path}: give a page or a series, not both")
            if not 0 <= page < n_pages:
                raise ImageError(
                    f"{path}: page {page} requested but the file has {n_pages} page(s)"
                )
            return _planar_to_last(tif.pages[page].asarray(), tif.pages[page])
        if series is None and len(all_series) > 1:
            shapes = ", ".join(f"{i}: {tuple(s.shape)}" for i, s in enumerate(all_series))
            raise ImageError(
                f"{path}: holds {len(all_series)} image series ({shapes}); set `mct_series`/"
                "`sem_series` in the sample's config to choose one"
            )
        if series is not None and not 0 <= series < len(all_series):
            raise ImageError(
                f"{path}: series {series} requested but the file has {len(all_series)} series"
            )
        chosen = all_series[series or 0]
        arr = _planar_to_last(chosen.asarray(), chosen.pages[0])
        if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
            raise ImageError(
                f"{path}: is a stack of {arr.shape[0]} pages/planes (shape {arr.shape}); set "
                "`mct_page`/`sem_page` in the sample's config to choose the slice"
            )
    return arr


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
    path: str | os.PathLike, page: int | None = None, series: int | None = None
) -> tuple[int, int]:
    """(height, width) of the 2-D image :func:`read_image` would return, from the file's
    header only (no pixels are decoded); problems raise :class:`ImageError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: file does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            with _tifffile_log_held(p), tifffile.TiffFile(p) as tif:
                if page is not None:
                    if not 0 <= page < len(tif.pages):
                        raise ImageError(
                            f"{p}: page {page} requested but the file has {len(tif.pages)} page(s)"
                        )
                    shape = tif.pages[page].shape
                else:
                    all_series = tif.series
                    if series is None and len(all_series) > 1:
                        raise ImageError(
                            f"{p}: holds {len(all_series)} image series; set `mct_series`/"
                            "`sem_series` in the sample's config to choose one"
                        )
                    if series is not None and not 0 <= series < len(all_series):
                        raise ImageError(
                            f"{p}: series {series} requested but the file has "
                            f"{len(all_series)} series"
                        )
                    shape = all_series[series or 0].shape
                    if len(shape) == 3 and shape[-1] not in (3, 4) and len(tif.pages) > 1:
                        raise ImageError(
                            f"{p}: is a stack of {shape[0]} pages (shape {tuple(shape)}); set "
                            "`mct_page`/`sem_page` in the sample's config to choose the slice"
                        )
        else:
            from PIL import Image

            with Image.open(p) as im:
                shape = (im.height, im.width)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 (readers raise many types for broken headers)
        raise ImageError(f"{p}: unreadable image header ({type(exc).__name__}: {exc})") from exc
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3 and shape[-1] in (3, 4):
        shape = shape[:2]
    elif len(shape) == 3 and shape[0] in (3, 4):
        shape = shape[1:]
    return shape[-2], shape[-1]
