"""What ``rocksr enhance`` writes and may write: output paths and formats, the checks on every
target before any work (:func:`check_outputs`), and :class:`OutputWriter`, which writes one
TIFF/PNG/OME-Zarr output slice by slice under a temporary name with its provenance."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rocksr.data.zarr_io import remove_store_tree
from rocksr.enhance.errors import EnhanceError
from rocksr.outputs import UnsafeOutputError

_OME_SUFFIX = ".ome.zarr"


TIFF_SUFFIXES = (".tif", ".tiff")


def _output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_OME_SUFFIX) and len(name) > len(_OME_SUFFIX):
        return "omezarr"
    if path.suffix.lower() in TIFF_SUFFIXES:
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


def array_role(key: str, stochastic: bool) -> str:
    """What output ``key`` holds, as its provenance's ``array`` says."""
    if key == "pred":
        return "sample 0" if stochastic else "prediction"
    return {"mean": "mean", "std": "std (population, grey levels 0..255, float32)"}[key]


def array_dtype(key: str) -> str:
    """The dtype of output ``key``: the std is float32, everything else uint8."""
    return "float32" if key == "std" else "uint8"


ROLES = {"pred": "output", "mean": "_mean output", "std": "_std output", "report": "report"}
_RELATION = {
    "same": "would overwrite",
    "contains": "would replace a folder that holds",
    "inside": "would be written inside",
}


def target_format(key: str, path: Path) -> str:
    """The format of target ``key`` (``json`` for the report; else by extension)."""
    return "json" if key == "report" else _output_format(path)


def check_holds_stack(fmt: str, path: Path, stack: bool) -> None:
    """Refuse a one-image format (PNG) for a stack's output."""
    if stack and fmt == "png":
        raise EnhanceError(f"{path}: PNG holds one image; write a stack to .tif or .ome.zarr")


def _location(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return Path(os.path.abspath(path))


def _relation(a: Path, b: Path) -> str | None:
    """``same``, ``contains``, ``inside`` (``a`` relative to ``b``, resolved, so a link, ``..``
    or a hard link is seen through), or None for unrelated locations."""
    ra, rb = _location(a), _location(b)
    same = ra == rb
    with contextlib.suppress(OSError):  # either absent: not the same file
        same = same or os.path.samefile(a, b)
    if same:
        return "same"
    if ra in rb.parents:
        return "contains"
    return "inside" if rb in ra.parents else None


def check_collisions(targets: dict[str, Path], sources: dict[str, Path]) -> None:
    """Refuse a target (``{key: path}``, keys of :data:`ROLES`) that is, holds or lies inside a
    source (``{"input": ..., "checkpoint": ...}``) or a target before it."""
    seen = dict(sources)
    for key, path in targets.items():
        for name, other in seen.items():
            rel = _relation(path, other)
            if rel:
                option = "--report" if key == "report" else "--output"
                raise EnhanceError(
                    f"{path}: the {ROLES[key]} {_RELATION[rel]} the {name} ({other}); choose "
                    f"another {option}"
                )
        seen[ROLES[key]] = path


def _check_folder(path: Path, role: str) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise EnhanceError(f"{path}: {role} folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EnhanceError(f"{path}: {role} folder {folder} is not writable")


def check_outputs(
    targets: dict[str, Path], sources: dict[str, Path], overwrite: bool = False
) -> dict[str, str]:
    """Every path ``enhance`` will write (``{key: path}``, keys of :data:`ROLES`), checked
    before any work: known format, existing writable folder, not the input, the checkpoint or
    another target (nor inside or around one), and absent or written by ``enhance`` unless
    ``overwrite`` (:func:`check_target`).  Returns ``{key: format}``."""
    fmts = {key: target_format(key, p) for key, p in targets.items()}
    for key, p in targets.items():
        _check_folder(p, "report" if key == "report" else "output")
    check_collisions(targets, sources)
    for key, p in targets.items():
        check_target(p, fmts[key], overwrite)
    return fmts


class OutputWriter:
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
        remove_store_tree(self.tmp)  # after zarr's writes in flight (a SIGTERM may cut one)

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
                    # sorted as in a TIFF description: the same bytes whatever the dict order
                    "rocksr": json.loads(json.dumps(self.prov, sort_keys=True)),
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


@contextlib.contextmanager
def output_writers(
    targets: dict[str, Path],
    fmts: dict[str, str],
    shape: tuple[int, ...],
    prov: dict,
    stochastic: bool,
) -> Iterator[dict[str, OutputWriter]]:
    """An :class:`OutputWriter` per target, its provenance naming its array; all committed when
    the block ends, all aborted (nothing left behind) on any error."""
    outs: dict[str, OutputWriter] = {}
    try:
        for key, p in targets.items():
            role = array_role(key, stochastic)
            outs[key] = OutputWriter(p, fmts[key], shape, array_dtype(key), {**prov, "array": role})
        yield outs
        for o in outs.values():
            o.commit()
    except BaseException:
        for o in outs.values():
            o.abort()
        raise


ENHANCE_TOOL = "rocksr enhance"  # provenance "tool" of every output and report enhance writes
_REPORT_MAX_BYTES = 1 << 24  # a larger file is no report of enhance's (and is not read)
_ZARR_META = ("zarr.json", ".zgroup", ".zarray")


def _is_enhance_record(rec: Any) -> bool:
    return isinstance(rec, dict) and rec.get("tool") == ENHANCE_TOOL


def read_record(path: Path, fmt: str) -> Any:
    """The provenance record where ``enhance`` stores it in a ``fmt`` file (``json``: the
    report itself); raises on anything unreadable."""
    if fmt == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return json.loads(tif.pages[0].description)["rocksr"]
    if fmt == "png":
        from PIL import Image

        with Image.open(path) as im:
            return json.loads(im.text["rocksr"])
    if fmt == "omezarr":
        attrs = json.loads((path / "zarr.json").read_text())["attributes"]
        return attrs["rocksr"] if attrs.get("rocksr_store") == "enhance" else None
    if path.stat().st_size > _REPORT_MAX_BYTES:
        return None
    return json.loads(path.read_bytes())


def written_by_enhance(path: Path, fmt: str) -> bool:
    """Whether the existing ``path`` carries the provenance ``enhance`` writes (TIFF description,
    PNG text chunk, OME-Zarr attributes ``rocksr_store: enhance``, or a report's JSON, each with
    ``tool: rocksr enhance``); a file without it is the user's."""
    try:
        return _is_enhance_record(read_record(path, fmt))
    except Exception:  # noqa: BLE001 (unreadable, foreign or another format: not ours)
        return False


def _refuse_foreign(path: Path, what: str) -> None:
    raise UnsafeOutputError(
        f"{path}: {what} that rocksr enhance did not write; refusing to replace it (pass "
        "--overwrite to replace it, or choose another path)"
    )


def check_target(path: Path, fmt: str, overwrite: bool = False) -> None:
    """Refuse (:class:`rocksr.outputs.UnsafeOutputError`, naming ``path``) to write ``path``
    unless it is absent or something ``enhance`` wrote (:func:`written_by_enhance`).  With
    ``overwrite`` a user's regular file (or Zarr store, for ``.ome.zarr``) may be replaced too;
    a folder, a link and a non-Zarr folder never are."""
    from rocksr.outputs import check_file_target, check_store_target

    if fmt != "omezarr":
        check_file_target(path)
        if path.exists() and not overwrite and not written_by_enhance(path, fmt):
            _refuse_foreign(path, "exists and is a file")
        return
    if path.is_symlink() or not path.exists():
        check_store_target(path)  # refuses a link, accepts an absent path
    elif written_by_enhance(path, fmt):
        check_store_target(path)  # refuses an enhance store a user added files to
    elif not (path.is_dir() and any((path / m).is_file() for m in _ZARR_META)):
        raise UnsafeOutputError(
            f"{path}: is a {'folder' if path.is_dir() else 'file'}, not a Zarr store; refusing "
            "to replace it (move it away or choose another output path)"
        )
    elif not overwrite:
        _refuse_foreign(path, "exists and is a Zarr store")
