"""Stage `build_dataset`: tile and rotate normalized pairs into the Zarr tile store."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rocksr import __version__
from rocksr.config.merge import merge_known
from rocksr.data.images import ImageError, check_pair, read_image
from rocksr.data.normalize import NORMALIZE_DEFAULTS
from rocksr.data.tilestore import (
    STORE_DEFAULTS,
    SamplePair,
    build_manifest,
    write_manifest,
    write_tiles,
)
from rocksr.data.tiling import footprint_size
from rocksr.files import sha256_file
from rocksr.outputs import check_file_target, check_store_target
from rocksr.stages.args import json_arg

log = logging.getLogger(__name__)


def normalization_record(normalize: dict | None) -> dict:
    """The contrast normalization of the pairs (``normalize`` config section, defaults filled):
    ``{"method": "percentile", "mct": {...}, "sem": {...}}``."""
    n = normalize or {}
    return {
        "method": "percentile",
        "mct": merge_known(NORMALIZE_DEFAULTS, n.get("mct"), "normalize.mct"),
        "sem": merge_known(NORMALIZE_DEFAULTS, n.get("sem"), "normalize.sem"),
    }


def load_pairs(samples: Sequence[tuple[str, str, str]], tile_size: int) -> list[SamplePair]:
    """Read normalized 8-bit pairs ``(name, mct_path, sem_path)`` and check them all first."""
    pairs = []
    fp = footprint_size(tile_size)
    for name, mct_path, sem_path in samples:
        mct, sem = read_image(mct_path), read_image(sem_path)
        for arr, path in ((mct, mct_path), (sem, sem_path)):
            if arr.dtype != np.uint8:
                raise ImageError(f"{path}: expected a normalized 8-bit image, got {arr.dtype}")
        check_pair(mct, sem, mct_path, sem_path, min_size=fp)
        pairs.append(SamplePair(name, mct, sem))
    names = [p.name for p in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate sample name(s) {dup}; sample names must be unique")
    return pairs


def build_dataset(
    samples: Sequence[tuple[str, str, str]],
    out_store: str | os.PathLike,
    out_manifest: str | os.PathLike,
    tiling: dict,
    store_params: dict | None = None,
    provenance: dict | None = None,
    normalization: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Tile every sample, rotate each base tile by every angle, write the store and manifest."""
    size, stride = int(tiling["size"]), int(tiling["stride"])
    angles = [float(a) for a in tiling["angles"]]
    repeated = sorted({a % 360 for a in angles if [b % 360 for b in angles].count(a % 360) > 1})
    if repeated:
        raise ValueError(f"tiling.angles repeats {repeated}; every angle must appear once")
    edge = tiling.get("edge_tiles", "unrotated")
    interpolation = tiling.get("interpolation", "linear")
    sp = merge_known(STORE_DEFAULTS, store_params, "store")
    check_store_target(out_store)  # refuse a foreign output before any work
    check_file_target(out_manifest)
    pairs = load_pairs(samples, size)
    manifest = build_manifest([(p.name, *p.mct.shape) for p in pairs], size, stride, angles, edge)
    attributes = {
        "rocksr_version": __version__,
        "tile_size": size,
        "stride": stride,
        "angles": angles,
        "edge_tiles": edge,
        "interpolation": interpolation,
        "footprint_size": footprint_size(size),
        "rotation": "counter-clockwise about the tile centre; angle 0 = plain crop",
        "sources": {
            name: {
                "mct": str(m),
                "sem": str(s),
                "mct_sha256": sha256_file(m),
                "sem_sha256": sha256_file(s),
            }
            for name, m, s in samples
        },
        "config": provenance or {},
        # how the micro-CT and SEM were made 8-bit: checkpoints carry it to `rocksr enhance`
        "normalization": normalization_record(normalization),
        "manifest_columns": list(manifest.columns),
    }
    log.info("writing %d views (%d samples) to %s", len(manifest), len(pairs), out_store)
    write_tiles(
        pairs,
        manifest,
        out_store,
        size,
        attributes,
        compressor=sp["compressor"],
        level=int(sp["level"]),
        shard_tiles=int(sp["shard_tiles"]),
        workers=int(sp["workers"]),
        interpolation=interpolation,
        progress=progress,
    )
    write_manifest(manifest, out_manifest)
    return manifest


COMMAND = "build-dataset"
HELP = "tile + rotate normalized pairs into a Zarr store"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--samples", type=json_arg, required=True, help="JSON list of sample names")
    s.add_argument("--mct", nargs="+", required=True)
    s.add_argument("--sem", nargs="+", required=True)
    s.add_argument("--tiling", type=json_arg, required=True)
    s.add_argument("--store-params", type=json_arg, default={})
    s.add_argument(
        "--normalization",
        type=json_arg,
        default={},
        help="JSON: the normalize section that made the pairs 8-bit (recorded in the store)",
    )
    s.add_argument("--workers", type=int, default=0)
    s.add_argument("--out-store", required=True)
    s.add_argument("--out-manifest", required=True)
    s.add_argument("--no-progress", action="store_true")


def run(a: argparse.Namespace) -> None:
    names = a.samples if isinstance(a.samples, list) else [a.samples]
    if not (len(names) == len(a.mct) == len(a.sem)):
        raise SystemExit(
            f"build-dataset: {len(names)} sample names but {len(a.mct)} mct and {len(a.sem)} "
            "sem files"
        )
    store = dict(a.store_params or {})
    if a.workers:
        store["workers"] = a.workers
    build_dataset(
        list(zip(names, a.mct, a.sem, strict=True)),
        a.out_store,
        a.out_manifest,
        a.tiling,
        store,
        provenance={
            "tiling": a.tiling,
            "store": {k: v for k, v in store.items() if k != "workers"},
            "samples": names,
        },
        progress=not a.no_progress,
        normalization=a.normalization,
    )
