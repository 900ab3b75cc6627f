"""rocksr.files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rocksr.outputs import check_file_target

_TIFF_SUFFIXES = {".tif", ".tiff"}


_PNG_SUFFIXES = {".png"}


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
    from rocksr.outputs import check_file_target

    p = Path(path)
    check_file_target(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}{p.suffix}")
    suffix = p.suffix.lower()
    try:
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            tifffile.imwrite(tmp, arr, compression="zlib")
        elif suffix in _PNG_SUFFIXES:
            from PIL import Image

            Image.fromarray(arr).save(tmp)
        else:
            raise ValueError(f"{p}: unsupported output type {suffix!r}")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically (temporary file + rename)."""
    p = Path(path)
    check_file_target(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, p)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a CSV atomically (temporary file + rename)."""
    write_text(df.to_csv(index=False), path)


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a figure atomically and close it (refusing to replace anything but a file)."""
    from rocksr.outputs import check_file_target

    p = Path(path)
    check_file_target(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.partial{p.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, p)
