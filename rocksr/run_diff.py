"""What differs between two runs' results (``results/<run>`` of two versions or two folders).

A change that should leave results alone (a refactor, a speed-up at equal arithmetic) is checked
by running the same config before and after it and comparing the two result folders here. Each
result is compared by what it holds, not by its bytes, so that provenance a newer version adds
does not hide what matters:

* Zarr stores (tiles, predictions): every array's values, by name;
* checkpoints (``.pt``): every tensor found in both, by its key path (weights, EMA, optimizer);
* CSV tables: every column found in both, row by row, as written;
* TIFF images: the pixel arrays.

The run's documented timing files (:data:`TIMING_FILES`, docs/outputs.md "Timings and
locations") and the logs, benchmarks and resumable states are left out: they differ between two
runs of one version.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# relative to results/<run>: what a run measures of its machine (docs/outputs.md)
TIMING_FILES = (
    "*_timing.csv",
    "timing.json",
    "evaluation/budget.*",  # training wall time, inference seconds per tile
    "evaluation/table1.md",  # ends with the budget table (table1.csv holds the results)
    "evaluation/sampler_study.md",  # seconds per image, speed-ups
    "figures/sampler_study.png",
    "enhanced/*/*.json",
    "enhanced_stacks/*/*.json",
    "warnings.txt",
)
# folders of a run that hold no result: logs, benchmarks, resumable training states, samples
# drawn during training
UNCOMPARED_FOLDERS = ("logs", "benchmarks", "state", "val_samples", ".snakemake")
COMPARED_SUFFIXES = (".zarr", ".pt", ".csv", ".tif")


def timing_file(rel: Path) -> bool:
    """Whether ``rel`` (relative to ``results/<run>``) is a log, a benchmark or a timing file."""
    return rel.parts[0] in ("logs", "benchmarks") or any(rel.match(p) for p in TIMING_FILES)


@dataclass(frozen=True)
class Finding:
    """One result of the comparison: ``path`` (in the first run; ``other`` in the second when an
    alias maps it), ``same`` (True, False, or None when it is in one run only) and what was seen."""

    path: str
    same: bool | None
    detail: str
    other: str | None = None

    def line(self) -> str:
        name = self.path if self.other in (None, self.path) else f"{self.path} = {self.other}"
        mark = {True: "same", False: "DIFFERS", None: "only in one run"}[self.same]
        return f"{name}: {mark} ({self.detail})"


def result_files(root: str | os.PathLike) -> dict[str, Path]:
    """The comparable results below ``root`` by relative path: Zarr stores (as one entry),
    checkpoints, CSV tables and TIFF images, timing files and uncompared folders left out."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a results folder (a directory such as results/demo)")
    out: dict[str, Path] = {}
    for dirpath, dirs, files in os.walk(root):
        here = Path(dirpath)
        if here.suffix == ".zarr":
            out[here.relative_to(root).as_posix()] = here
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in UNCOMPARED_FOLDERS)
        for name in files:
            path = here / name
            rel = path.relative_to(root)
            if path.suffix in COMPARED_SUFFIXES and not timing_file(rel):
                out[rel.as_posix()] = path
    return out


def _tensors(obj: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    import torch

    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def compare_checkpoints(a: Path, b: Path) -> tuple[bool, str]:
    import torch

    ta = dict(_tensors(torch.load(a, map_location="cpu", weights_only=False)))
    tb = dict(_tensors(torch.load(b, map_location="cpu", weights_only=False)))
    common = sorted(set(ta) & set(tb))
    bad = [k for k in common if ta[k].shape != tb[k].shape or not torch.equal(ta[k], tb[k])]
    detail = f"{len(common)} tensors" + (f", differing: {', '.join(bad[:4])}" if bad else "")
    if set(ta) ^ set(tb):
        detail += f"; {len(set(ta) ^ set(tb))} in one only"
    return not bad and bool(common), detail


def compare_stores(a: Path, b: Path) -> tuple[bool, str]:
    import warnings

    import numpy as np
    import zarr

    with warnings.catch_warnings():  # rocksr's digest manifest is not a Zarr node
        warnings.simplefilter("ignore")
        ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
        na, nb = sorted(k for k, _ in ga.arrays()), sorted(k for k, _ in gb.arrays())
        if na != nb:
            return False, f"arrays {na} vs {nb}"
        bad = [k for k in na if not np.array_equal(ga[k][...], gb[k][...])]
    return not bad, f"{len(na)} arrays" + (f", differing: {', '.join(bad)}" if bad else "")


def compare_tables(a: Path, b: Path) -> tuple[bool, str]:
    import pandas as pd

    da, db = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
    if len(da) != len(db):
        return False, f"{len(da)} vs {len(db)} rows"
    cols = [c for c in da.columns if c in db.columns]
    bad = [c for c in cols if not da[c].fillna("").equals(db[c].fillna(""))]
    detail = f"{len(cols)} columns" + (f", differing: {', '.join(bad)}" if bad else "")
    only = sorted(set(da.columns) ^ set(db.columns))
    if only:
        detail += f"; in one only: {', '.join(only)}"
    return not bad, detail


def compare_images(a: Path, b: Path) -> tuple[bool, str]:
    import numpy as np
    import tifffile

    ia, ib = tifffile.imread(a), tifffile.imread(b)
    if ia.shape != ib.shape:
        return False, f"shape {ia.shape} vs {ib.shape}"
    return bool(np.array_equal(ia, ib)), f"shape {ia.shape}"


COMPARERS = {
    ".zarr": compare_stores,
    ".pt": compare_checkpoints,
    ".csv": compare_tables,
    ".tif": compare_images,
}


def compare_runs(
    first: str | os.PathLike, second: str | os.PathLike, aliases: dict[str, str] | None = None
) -> list[Finding]:
    """Every comparable result of two runs (:func:`result_files`); ``aliases`` maps a path of the
    first run to the path the same result has in the second (a result that moved)."""
    aliases = aliases or {}
    fa, fb = result_files(first), result_files(second)
    found = []
    for rel, path in sorted(fa.items()):
        other = aliases.get(rel, rel)
        if other not in fb:
            found.append(Finding(rel, None, f"not in {second}"))
            continue
        try:
            same, detail = COMPARERS[path.suffix](path, fb[other])
        except Exception as exc:  # an unreadable file is a difference, said in one line
            same, detail = False, f"cannot be compared: {type(exc).__name__}: {exc}"
        found.append(Finding(rel, same, detail, other))
    mapped = {aliases.get(rel, rel) for rel in fa}
    found += [Finding(rel, None, f"not in {first}") for rel in sorted(set(fb) - mapped)]
    return found
