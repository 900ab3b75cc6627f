"""Stage `build_dataset`: tile and rotate normalized pairs into the Zarr tile store."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rocksr import __version__
from rocksr.config.merge import merge_known
from rocksr.data.images import ImageError, check_pair, read_image
from rocksr.data.masks import read_mask_image
from rocksr.data.normalize import NORMALIZE_DEFAULTS
from rocksr.data.tilestore import (
    STORE_DEFAULTS,
    SamplePair,
    plan_dataset,
    write_manifest,
    write_tiles,
)
from rocksr.data.tiling import footprint_size
from rocksr.files import sha256_file, write_table
from rocksr.outputs import check_file_target, check_store_target
from rocksr.stages.args import json_arg

log = logging.getLogger(__name__)


def normalization_record(
    normalize: dict | None,
    mask_modes: Sequence[str] | None = None,
    mct_scales: Sequence[int] | None = None,
) -> dict:
    """The contrast normalization of the pairs, as the tile store and every checkpoint record it
    (``rocksr enhance`` reads it back with
    :func:`rocksr.enhance.normalization.read_normalization_record`; ``normalize`` config section,
    defaults filled):
    ``{"method": "percentile", "mct": {...}, "sem": {...}, "within": ..., "mct_scale": ...}``.

    ``within`` says where the percentiles were taken, from the samples' mask modes (their
    normalize reports; none given: no masks): ``image`` (no masks), ``auto_fov`` (every sample's
    circular field of view; ``rocksr enhance`` then finds the new input's) or ``masks`` (mask
    images, or a mix). ``mct_scale`` is the micro-CT up-sampling factor every sample shared
    (``rocksr enhance`` applies it to a raw slice), None when they differ."""
    n = normalize or {}
    modes = {m or "none" for m in mask_modes or ["none"]}
    within = "image" if modes == {"none"} else "auto_fov" if modes == {"auto_fov"} else "masks"
    scales = sorted({int(f) for f in mct_scales or [1]})
    return {
        "method": "percentile",
        "mct": merge_known(NORMALIZE_DEFAULTS, n.get("mct"), "normalize.mct"),
        "sem": merge_known(NORMALIZE_DEFAULTS, n.get("sem"), "normalize.sem"),
        "within": within,
        "mct_scale": scales[0] if len(scales) == 1 else None,
        "mct_scales": scales,
    }


def read_reports(reports: Sequence[str | os.PathLike]) -> tuple[list[str], list[int]]:
    """(mask modes, micro-CT up-sampling factors) of the samples, from their normalize.json."""
    import json

    modes, scales = [], []
    for path in reports:
        try:
            report = json.loads(Path(path).read_text())
            modes.append(str(report["mask"]["mode"]))
            scales.append(int(report["registration"]["mct_scale"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ImageError(
                f"{path}: not a normalize report with mask and registration records ({exc}); "
                "re-run normalize"
            ) from exc
    return modes, scales


def load_pairs(
    samples: Sequence[tuple[str, str, str]],
    tile_size: int,
    masks: Sequence[str | os.PathLike] | None = None,
) -> list[SamplePair]:
    """Read normalized 8-bit pairs ``(name, mct_path, sem_path)`` (and each one's valid-area
    mask image, when ``masks`` lists them in the same order) and check them all first."""
    pairs = []
    fp = footprint_size(tile_size)
    if masks is not None and len(masks) != len(samples):
        raise ValueError(f"{len(samples)} samples but {len(masks)} masks")
    for i, (name, mct_path, sem_path) in enumerate(samples):
        mct, sem = read_image(mct_path), read_image(sem_path)
        for arr, path in ((mct, mct_path), (sem, sem_path)):
            if arr.dtype != np.uint8:
                raise ImageError(f"{path}: expected a normalized 8-bit image, got {arr.dtype}")
        check_pair(mct, sem, mct_path, sem_path, min_size=fp)
        mask = None if masks is None else read_mask_image(masks[i], mct.shape)
        pairs.append(SamplePair(name, mct, sem, None if mask is None or mask.all() else mask))
    names = [p.name for p in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate sample name(s) {dup}; sample names must be unique")
    return pairs


def tiling_settings(tiling: dict) -> tuple[int, int, list[float], str, str]:
    """``(size, stride, angles, edge_tiles, interpolation)`` of the ``tiling`` section; raise
    when an angle (modulo 360) is given twice."""
    size, stride = int(tiling["size"]), int(tiling["stride"])
    angles = [float(a) for a in tiling["angles"]]
    repeated = sorted({a % 360 for a in angles if [b % 360 for b in angles].count(a % 360) > 1})
    if repeated:
        raise ValueError(f"tiling.angles repeats {repeated}; every angle must appear once")
    edge = tiling.get("edge_tiles", "unrotated")
    interpolation = tiling.get("interpolation", "linear")
    return size, stride, angles, edge, interpolation


def source_records(
    samples: Sequence[tuple[str, str, str]], masks: Sequence[str | os.PathLike] | None
) -> dict[str, dict]:
    """``{sample: {"mct", "sem", "mct_sha256", "sem_sha256"[, "mask", "mask_sha256"]}}``: the
    files each sample's tiles come from, with their digests."""
    return {
        name: {
            "mct": str(m),
            "sem": str(s),
            "mct_sha256": sha256_file(m),
            "sem_sha256": sha256_file(s),
            **(
                {"mask": str(masks[i]), "mask_sha256": sha256_file(masks[i])}
                if masks is not None
                else {}
            ),
        }
        for i, (name, m, s) in enumerate(samples)
    }


def build_dataset(
    samples: Sequence[tuple[str, str, str]],
    out_store: str | os.PathLike,
    out_manifest: str | os.PathLike,
    tiling: dict,
    store_params: dict | None = None,
    provenance: dict | None = None,
    normalization: dict | None = None,
    progress: bool = True,
    *,
    out_dropped: str | os.PathLike | None = None,
    masks: Sequence[str | os.PathLike] | None = None,
    mask_modes: Sequence[str] | None = None,
    mct_scales: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Tile every sample, rotate each base tile by every angle, write the store and manifest.

    With ``masks`` (one valid-area mask image per sample), only views whose footprint lies inside
    the mask are kept; ``out_dropped`` lists every base tile left without a view and why."""
    size, stride, angles, edge, interpolation = tiling_settings(tiling)
    sp = merge_known(STORE_DEFAULTS, store_params, "store")
    check_store_target(out_store)  # refuse a foreign output before any work
    check_file_target(out_manifest)
    if out_dropped is not None:
        check_file_target(out_dropped)
    pairs = load_pairs(samples, size, masks)
    manifest, dropped = plan_dataset(
        [(p.name, *p.mct.shape) for p in pairs],
        size,
        stride,
        angles,
        edge,
        {p.name: p.mask for p in pairs},
    )
    check_every_sample_tiled(pairs, manifest, dropped, size, masks)
    if mask_modes is None:  # no reports: what the mask images show
        mask_modes = ["none" if p.mask is None else "image" for p in pairs]
    attributes = {
        "rocksr_version": __version__,
        "tile_size": size,
        "stride": stride,
        "angles": angles,
        "edge_tiles": edge,
        "interpolation": interpolation,
        "footprint_size": footprint_size(size),
        "rotation": "counter-clockwise about the tile centre; angle 0 = plain crop",
        "sources": source_records(samples, masks),
        "config": provenance or {},
        # how the micro-CT and SEM were made 8-bit: checkpoints carry it to `rocksr enhance`
        "normalization": normalization_record(normalization, mask_modes, mct_scales),
        "manifest_columns": list(manifest.columns),
        # base tiles per sample: kept (with at least one view) and dropped, by reason
        "base_tiles": base_tile_counts(manifest, dropped),
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
    if out_dropped is not None:
        write_table(dropped, out_dropped)
    write_manifest(manifest, out_manifest)
    return manifest


def base_tile_counts(manifest: pd.DataFrame, dropped: pd.DataFrame) -> dict:
    """``{sample: {"kept": n, <reason>: n, ...}}`` over the grid's base tiles."""
    out = {}
    for name in dict.fromkeys(manifest["sample"]):
        kept = manifest[manifest["sample"] == name].drop_duplicates(["grid_row", "grid_col"])
        reasons = dropped.loc[dropped["sample"] == name, "reason"].value_counts()
        out[name] = {"kept": len(kept), **{str(k): int(v) for k, v in reasons.items()}}
    return out


def check_every_sample_tiled(
    pairs: list[SamplePair],
    manifest: pd.DataFrame,
    dropped: pd.DataFrame,
    size: int,
    masks: Sequence[str | os.PathLike] | None,
) -> None:
    """Refuse a sample that keeps no view (its valid area holds no tile)."""
    for i, p in enumerate(pairs):
        if (manifest["sample"] == p.name).any():
            continue
        n = int((dropped["sample"] == p.name).sum())
        where = f"{masks[i]}: " if masks is not None and p.mask is not None else ""
        inside = "" if p.mask is None else f" (the mask keeps {p.mask.mean():.1%} of the image)"
        raise ImageError(
            f"{where}sample {p.name!r}: none of its {n} base tiles of {size} px lies inside its "
            f"valid area{inside}: use a smaller tiling.size, or a looser mask or crop"
        )


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
    s.add_argument(
        "--masks",
        nargs="+",
        help="one valid-area mask image per sample (normalize --out-mask), in --samples order",
    )
    s.add_argument("--out-dropped", help="CSV of the base tiles left without a view, and why")
    s.add_argument(
        "--reports",
        nargs="+",
        help="each sample's normalize.json (in --samples order): its mask mode and micro-CT "
        "up-sampling factor are recorded",
    )
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
    modes, scales = read_reports(a.reports) if a.reports else (None, None)
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
        out_dropped=a.out_dropped,
        masks=a.masks,
        mask_modes=modes,
        mct_scales=scales,
    )
