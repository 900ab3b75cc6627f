"""Every file rocksr writes appears complete or not at all: :func:`atomic_file` (a hidden
temporary name in the target's folder, renamed into place; removed on error) is the one writer
that the text, table, image, figure, checkpoint and manifest writers share. Plus SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.outputs import check_file_target


def partial_path(path: Path) -> Path:
    """The temporary name of ``path`` while it is written: hidden, in the same folder, with
    the process id, and ending in the same suffix (so libraries still infer the format)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}{path.suffix}")


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename into it survives a crash)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (refusing to replace
    anything but a file), on any error it is removed.  ``fsync``: flush the file and the
    folder, for state that must survive a crash (checkpoints, digest manifests)."""
    p = Path(path)
    check_file_target(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(p)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
        if fsync:
            fsync_dir(p.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


_TIFF_SUFFIXES = {".tif", ".tiff"}


_PNG_SUFFIXES = {".png"}


def recorded_path(path: str | os.PathLike) -> str:
    """A path as provenance records it: relative to the working directory when it lies inside
    it (so the same run in another folder records the same text), else as given. Where the run
    happened is recorded apart (``docs/outputs.md``, "Timings and locations")."""
    p = Path(path)
    if p.is_absolute():
        cwd = Path.cwd()
        for a, b in ((p, cwd), (p.resolve(), cwd.resolve())):
            with contextlib.suppress(ValueError):
                return a.relative_to(b).as_posix()
    return str(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (provenance in store attributes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_image(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a 2-D image atomically (tmp + rename): TIFF (zlib) or PNG by suffix; refuses to
    replace anything but a file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _TIFF_SUFFIXES | _PNG_SUFFIXES:
        raise ValueError(f"{p}: unsupported output type {suffix!r}")
    with atomic_file(p) as tmp:
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            tifffile.imwrite(tmp, arr, compression="zlib")
        else:
            from PIL import Image

            Image.fromarray(arr).save(tmp)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_table(df: Any, path: str | os.PathLike) -> None:
    """Write a CSV atomically (temporary file + rename)."""
    write_text(df.to_csv(index=False), path)


def read_table(path: str | os.PathLike, what: str, **read_csv: Any) -> Any:
    """A CSV as a DataFrame (``read_csv``: options of ``pandas.read_csv``), or a one-line
    ValueError naming the file (and ``what`` it should hold) when it is missing or unreadable."""
    import pandas as pd

    if not os.path.isfile(path):
        raise ValueError(f"{path}: {what} does not exist")
    try:
        return pd.read_csv(path, **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {what} is not a readable CSV ({type(exc).__name__})") from exc


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a Matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
