"""The data stages as functions of files: normalize a pair, build the tile store, split, Figure 1.

Each function checks all its inputs before writing anything, and writes every output atomically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rocksr import __version__
from rocksr.config_checks import check_fractions
from rocksr.io import ImageError, check_pair, read_image, sha256_file, write_image
from rocksr.normalize import (
    MIN_GREY_LEVELS,
    NORMALIZE_DEFAULTS,
    grey_levels,
    normalize_image,
    stretch_limits,
)
from rocksr.outputs import check_file_target, check_store_target
from rocksr.splits import leakage, make_splits, split_counts
from rocksr.store import (
    STORE_DEFAULTS,
    SamplePair,
    build_manifest,
    open_tiles,
    read_manifest,
    write_manifest,
    write_table,
    write_text,
    write_tiles,
)
from rocksr.tiling import footprint_size

log = logging.getLogger(__name__)

# a split that keeps fewer than this fraction of the views warns (the rest are `excluded`)
EXCLUDED_WARN_FRACTION = 0.5


def _merge(defaults: dict, given: dict | None, what: str) -> dict:
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(
            f"{what}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(defaults)}"
        )
    return {**defaults, **given}


def normalize_pair(
    mct_path: str | os.PathLike,
    sem_path: str | os.PathLike,
    out_mct: str | os.PathLike,
    out_sem: str | os.PathLike,
    histograms_png: str | os.PathLike,
    report_json: str | os.PathLike,
    params: dict,
    sample: str = "sample",
    mct_page: int | None = None,
    sem_page: int | None = None,
    min_size: int = 2,
    mct_series: int | None = None,
    sem_series: int | None = None,
) -> dict:
    """Read and check a raw registered pair, normalize each modality to 8 bits, write outputs."""
    from rocksr.figures_data import histogram_figure

    p_mct = _merge(NORMALIZE_DEFAULTS, params.get("mct"), "normalize.mct")
    p_sem = _merge(NORMALIZE_DEFAULTS, params.get("sem"), "normalize.sem")
    raw = {
        "mct": read_image(mct_path, mct_page, mct_series),
        "sem": read_image(sem_path, sem_page, sem_series),
    }
    check_pair(raw["mct"], raw["sem"], mct_path, sem_path, min_size=min_size)
    for key, path, p in (("mct", mct_path, p_mct), ("sem", sem_path, p_sem)):
        lo, hi = stretch_limits(raw[key], p["p_low"], p["p_high"])
        if hi <= lo:
            raise ImageError(
                f"{path}: percentiles {p['p_low']} and {p['p_high']} are both {lo:g} (nearly "
                "every pixel has one value), so the stretch would give a blank image; widen "
                f"normalize.{key}.p_low/p_high"
            )
    normalized = {
        "mct": normalize_image(raw["mct"], **p_mct),
        "sem": normalize_image(raw["sem"], **p_sem),
    }
    report = {
        "sample": sample,
        "shape": list(raw["mct"].shape),
        "rocksr_version": __version__,
        "warnings": [],
    }
    for key, path, p in (("mct", mct_path, p_mct), ("sem", sem_path, p_sem)):
        lo, hi = stretch_limits(raw[key], p["p_low"], p["p_high"])
        levels = grey_levels(normalized[key])
        if levels < MIN_GREY_LEVELS:
            msg = (
                f"{path}: the normalized image has only {levels} grey levels (fewer than "
                f"{MIN_GREY_LEVELS}; stretch window {lo:g}..{hi:g} of a {raw[key].dtype} "
                "image): the contrast is posterized"
            )
            log.warning(msg)
            report["warnings"].append(msg)
        report[key] = {
            "source": str(path),
            "sha256": sha256_file(path),
            "dtype": str(raw[key].dtype),
            "stretch_black": lo,
            "stretch_white": hi,
            "params": p,
            "mean_after": float(normalized[key].mean()),
        }
    write_image(out_mct, normalized["mct"])
    write_image(out_sem, normalized["sem"])
    histogram_figure(raw, normalized, f"{sample}: contrast normalization", histograms_png)
    write_text(json.dumps(report, indent=2, sort_keys=True), report_json)
    return report


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
    sp = _merge(STORE_DEFAULTS, store_params, "store")
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


def split_dataset(
    manifest_path: str | os.PathLike,
    out_splits: str | os.PathLike,
    out_counts: str | os.PathLike,
    out_map: str | os.PathLike,
    params: dict,
) -> pd.DataFrame:
    """Assign every view to a split, check location-disjointness, write table, counts and map."""
    from rocksr.figures_data import split_map_figure

    manifest = read_manifest(manifest_path)
    strategy = params.get("strategy", "blocks")
    fractions = params.get("fractions", {"train": 0.7, "val": 0.1, "test": 0.2})
    if strategy != "holdout_sample":
        check_fractions(fractions)
    splits = make_splits(
        manifest,
        strategy,
        fractions,
        int(params.get("seed", 0)),
        blocks=params.get("blocks"),
        holdout=params.get("holdout"),
    )
    leak = leakage(manifest, splits)
    shared = int(leak["shared_pixels"].sum())
    if strategy != "random" and shared:
        raise AssertionError(
            f"split strategy {strategy!r} produced {shared} shared footprint pixels"
        )
    if shared:
        log.warning("random split: %d footprint pixels shared between splits (leak)", shared)
    counts = split_counts(manifest, splits)
    counts["shared_footprint_pixels"] = shared
    for name in ("train", "val", "test"):
        if (
            counts.loc[counts["split"] == name, "views"].item() == 0
            and params.get("fractions", {}).get(name, 0) > 0
        ):
            log.warning("split %s is empty; use more/larger blocks or a larger image", name)
    kept = int(counts.loc[counts["split"] != "excluded", "views"].sum())
    if kept < EXCLUDED_WARN_FRACTION * len(manifest):
        per = ", ".join(
            f"{r.split} {r.views}" for r in counts.itertuples() if r.split != "excluded"
        )
        log.warning(
            "split keeps only %d of %d views (%s); the rest straddle block borders: use fewer "
            "split blocks (split.blocks rows/cols) or smaller tiles",
            kept,
            len(manifest),
            per,
        )
    write_table(splits, out_splits)
    write_table(counts, out_counts)
    split_map_figure(manifest, splits, out_map)
    return splits


def figure1_from_store(
    store: str | os.PathLike,
    manifest_path: str | os.PathLike,
    out_png: str | os.PathLike,
    n_rotated: int = 2,
) -> None:
    """Figure 1: the most central base tile's unrotated view and two rotated views, from the store."""
    from rocksr.figures_data import figure1

    group = open_tiles(store)
    manifest = read_manifest(manifest_path)
    rotated = manifest[manifest["view"] == "rotated"]
    pool = rotated if len(rotated) else manifest
    first = pool["sample"].iloc[0]
    pool = pool[pool["sample"] == first]
    cy = pool["image_height"].iloc[0] / 2
    cx = pool["image_width"].iloc[0] / 2
    size = int(group.attrs["tile_size"])
    d = (pool["y0"] + size / 2 - cy) ** 2 + (pool["x0"] + size / 2 - cx) ** 2
    r, c = pool.loc[d.idxmin(), ["grid_row", "grid_col"]]
    views = pool[(pool["grid_row"] == r) & (pool["grid_col"] == c)]
    non_zero = views[views["angle"] % 90 != 0]
    chosen = [views[views["angle"] == 0]["tile_id"].iloc[0]] if (views["angle"] == 0).any() else []
    pick = non_zero if len(non_zero) else views[views["angle"] != 0]
    if len(pick):
        idx = np.linspace(0, len(pick) - 1, min(n_rotated, len(pick))).round().astype(int)
        chosen += list(pick["tile_id"].iloc[idx])
    angles = [float(manifest.loc[t, "angle"]) for t in chosen]
    tiles = {k: np.stack([group[k][int(t)] for t in chosen]) for k in ("mct", "sem")}
    y0, x0 = int(views["y0"].iloc[0]), int(views["x0"].iloc[0])
    figure1(tiles, angles, f"{first}: base tile at (y={y0}, x={x0}) and rotated views", out_png)


__all__ = [
    "build_dataset",
    "figure1_from_store",
    "load_pairs",
    "normalize_pair",
    "split_dataset",
]
