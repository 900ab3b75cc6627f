"""rocksr.enhance.outputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.enhance.errors import EnhanceError

_OME_SUFFIX = ".ome.zarr"


_TIFF = (".tif", ".tiff")


def _output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_OME_SUFFIX) and len(name) > len(_OME_SUFFIX):
        return "omezarr"
    if path.suffix.lower() in _TIFF:
        return "tiff"
    if path.suffix.lower() == ".png":
        return "png"
    raise EnhanceError(
        f"{path}: unknown output type {path.suffix or '(no extension)'!r}; use .tif/.tiff "
        "(2-D or stack), .png (2-D) or .ome.zarr (2-D or stack)"
    )


def _sibling(path: Path, tag: str, float_data: bool = False) -> Path:
    name = path.name
    if name.lower().endswith(_OME_SUFFIX):
        return path.with_name(name[: -len(_OME_SUFFIX)] + tag + name[-len(_OME_SUFFIX) :])
    suffix = ".tif" if float_data and path.suffix.lower() == ".png" else path.suffix
    return path.with_name(path.stem + tag + suffix)


def output_paths(output: str | os.PathLike, uncertainty: bool) -> dict[str, Path]:
    """``{"pred": output}`` plus ``mean``/``std`` siblings (``<stem>_mean``, ``<stem>_std``)."""
    out = Path(output)
    paths = {"pred": out}
    if uncertainty:
        paths["mean"] = _sibling(out, "_mean")
        paths["std"] = _sibling(out, "_std", float_data=True)
    return paths


class _Output:
    """One output (image or stack) written slice by slice under a temporary name."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        shape: tuple[int, ...],
        dtype: str,
        prov: dict,
    ) -> None:
        self.path, self.fmt, self.shape, self.dtype, self.prov = path, fmt, shape, dtype, prov
        self.stack = len(shape) == 3
        self.tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        self._tw: Any = None
        self._arr: Any = None
        self._img: np.ndarray | None = None
        self.written = 0
        self._remove_tmp()
        try:
            self._create()
        except BaseException:
            self.abort()
            raise

    def _create(self) -> None:
        fmt, shape, dtype = self.fmt, self.shape, self.dtype
        if fmt == "tiff":
            import tifffile

            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            self._tw = tifffile.TiffWriter(self.tmp, bigtiff=nbytes > 2**31)
        elif fmt == "omezarr":
            import zarr

            g = zarr.open_group(str(self.tmp), mode="w", zarr_format=3)
            h, w = shape[-2:]
            chunks = ((1,) if self.stack else ()) + (min(h, 1024), min(w, 1024))
            self._group = g
            self._arr = g.create_array(
                "0",
                shape=shape,
                dtype=dtype,
                chunks=chunks,
                fill_value=0,
                dimension_names=("z", "y", "x") if self.stack else ("y", "x"),
            )

    def _remove_tmp(self) -> None:
        if self.tmp.is_dir() and not self.tmp.is_symlink():
            shutil.rmtree(self.tmp)
        elif self.tmp.exists() or self.tmp.is_symlink():
            self.tmp.unlink()

    def write(self, z: int, arr: np.ndarray) -> None:
        if z != self.written or arr.shape != self.shape[-2:] or arr.dtype != np.dtype(self.dtype):
            raise AssertionError(f"slice {z} {arr.shape} {arr.dtype} out of order for {self.path}")
        desc = json.dumps({"rocksr": self.prov}, sort_keys=True)
        if self.fmt == "tiff":
            self._tw.write(
                arr, description=desc if z == 0 else None, metadata=None, compression="zlib"
            )
        elif self.fmt == "omezarr":
            if self.stack:
                self._arr[z] = arr
            else:
                self._arr[:] = arr
        else:
            self._img = arr
        self.written += 1

    def commit(self) -> None:
        n = self.shape[0] if self.stack else 1
        if self.written != n:
            raise AssertionError(f"{self.path}: wrote {self.written} of {n} slices")
        if self.fmt == "tiff":
            self._tw.close()
            self._tw = None
        elif self.fmt == "png":
            from PIL import Image, PngImagePlugin

            info = PngImagePlugin.PngInfo()
            info.add_text("rocksr", json.dumps(self.prov, sort_keys=True))
            Image.fromarray(self._img).save(self.tmp, format="PNG", pnginfo=info)
        else:
            axes = ["z", "y", "x"] if self.stack else ["y", "x"]
            self._group.attrs.update(
                {
                    "ome": {
                        "version": "0.5",
                        "multiscales": [
                            {
                                "name": self.path.name,
                                "axes": [{"name": a, "type": "space"} for a in axes],
                                "datasets": [
                                    {
                                        "path": "0",
                                        "coordinateTransformations": [
                                            {"type": "scale", "scale": [1.0] * len(axes)}
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                    "rocksr": self.prov,
                    "rocksr_store": "enhance",
                }
            )
        if self.fmt == "omezarr" and self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._tw is not None:
            with contextlib.suppress(Exception):
                self._tw.close()
            self._tw = None
        with contextlib.suppress(OSError):
            self._remove_tmp()


def _check_target(path: Path, fmt: str) -> None:
    from rocksr.outputs import check_file_target, check_store_target

    if fmt == "omezarr":
        check_store_target(path)
    else:
        check_file_target(path)
