"""Stage `normalize`: read and check a raw registered pair, contrast-normalize it to 8 bits."""

from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np

from rocksr import __version__
from rocksr.config.merge import merge_known
from rocksr.config.pair_settings import UNSET, PairSettings
from rocksr.data.images import ImageError, check_pair
from rocksr.data.masks import MIN_FOV_COVER, mask_image
from rocksr.data.normalize import (
    MIN_GREY_LEVELS,
    NORMALIZE_DEFAULTS,
    grey_levels,
    stretch_fixed,
    stretch_limits,
)
from rocksr.data.pairs import RegisteredPair, read_registered_pair
from rocksr.files import sha256_file, write_image, write_text
from rocksr.stages.args import json_arg, pair_settings_arg

log = logging.getLogger(__name__)


def stretch_pair(
    pair: RegisteredPair, paths: dict[str, str | os.PathLike], params: dict[str, dict]
) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """``(limits, normalized)`` per modality: the stretch window ``(black, white)`` from the
    percentiles inside the mask, and the 8-bit image; raise :class:`ImageError` when the
    window is empty (the image is nearly one value)."""
    limits, normalized = {}, {}
    for key in ("mct", "sem"):
        path, p = paths[key], params[key]
        # the percentiles once, inside the mask; the stretch of every pixel (= normalize_image)
        lo, hi = stretch_limits(pair.valid_values(key), p["p_low"], p["p_high"])
        if hi <= lo:
            raise ImageError(
                f"{path}: percentiles {p['p_low']} and {p['p_high']} are both {lo:g} (nearly "
                "every pixel has one value), so the stretch would give a blank image; widen "
                f"normalize.{key}.p_low/p_high"
            )
        limits[key] = (lo, hi)
        normalized[key] = stretch_fixed(pair.images[key], lo, hi, **p)
    return limits, normalized


def _warn(report: dict, msg: str) -> None:
    """Log ``msg`` and keep it in the report's ``warnings``."""
    log.warning(msg)
    report["warnings"].append(msg)


def pair_report(
    pair: RegisteredPair, sample: str, crop: list[int] | None, mct_path: str | os.PathLike
) -> dict:
    """The report's record of the pair (shape, registration, mask), with a warning when the
    ``auto_fov`` disc covers too little of the image; the modalities are added by
    :func:`modality_record`."""
    factor, mask_info = pair.factor, pair.mask_info
    report = {
        "sample": sample,
        "shape": list(pair.images["mct"].shape),
        "registration": {
            "mct_scale": factor,
            "interpolation": "cubic spline, pixel areas aligned (scipy.ndimage.zoom grid_mode)"
            if factor > 1
            else None,
            "crop": crop,
        },
        # where the percentiles were taken and tiles may lie
        "mask": mask_info,
        "rocksr_version": __version__,
        "warnings": [],
    }
    if mask_info.get("covers", 1.0) < MIN_FOV_COVER:
        _warn(
            report,
            f"{mct_path}: mask auto_fov: the disc covers only {mask_info['covers']:.0%} of the "
            "reconstructed area: it is not a circular field of view; a crop or a mask image "
            "keeps more of the data",
        )
    return report


def modality_record(
    report: dict,
    path: str | os.PathLike,
    params: dict,
    raw: np.ndarray,
    normalized: np.ndarray,
    limits: tuple[float, float],
) -> dict:
    """The report's record of one modality (source, stretch window, parameters, mean after);
    a posterized result (too few grey levels) adds a warning to ``report``."""
    lo, hi = limits
    levels = grey_levels(normalized)
    if levels < MIN_GREY_LEVELS:
        _warn(
            report,
            f"{path}: the normalized image has only {levels} grey levels (fewer than "
            f"{MIN_GREY_LEVELS}; stretch window {lo:g}..{hi:g} of a {raw.dtype} "
            "image): the contrast is posterized",
        )
    return {
        "source": str(path),
        "sha256": sha256_file(path),
        "dtype": str(raw.dtype),
        "stretch_black": lo,
        "stretch_white": hi,
        "params": params,
        "mean_after": float(normalized.mean()),
    }


def normalize_pair(
    mct_path: str | os.PathLike,
    sem_path: str | os.PathLike,
    out_mct: str | os.PathLike,
    out_sem: str | os.PathLike,
    report_json: str | os.PathLike,
    params: dict,
    sample: str = "sample",
    settings: PairSettings = UNSET,
    min_size: int = 2,
    out_mask: str | os.PathLike | None = None,
) -> dict:
    """Read and check a raw registered pair (as its ``settings`` say), normalize each modality
    to 8 bits, write outputs.

    The settings' ``mask`` (``none``, ``auto_fov`` or a mask image path,
    :mod:`rocksr.data.masks`) limits the percentiles to the valid area; ``out_mask`` receives it
    as an 8-bit image (255 = valid, all 255 for ``none``), which ``build-dataset`` uses to keep
    only tiles inside it."""
    p = {
        "mct": merge_known(NORMALIZE_DEFAULTS, params.get("mct"), "normalize.mct"),
        "sem": merge_known(NORMALIZE_DEFAULTS, params.get("sem"), "normalize.sem"),
    }
    pair = read_registered_pair(mct_path, sem_path, settings)
    raw, paths = pair.images, {"mct": mct_path, "sem": sem_path}
    check_pair(raw["mct"], raw["sem"], mct_path, sem_path, min_size=min_size)
    limits, normalized = stretch_pair(pair, paths, p)
    report = pair_report(pair, sample, settings.crop, mct_path)
    for key in ("mct", "sem"):
        report[key] = modality_record(
            report, paths[key], p[key], raw[key], normalized[key], limits[key]
        )
    write_image(out_mct, normalized["mct"])
    write_image(out_sem, normalized["sem"])
    if out_mask is not None:
        shape = normalized["mct"].shape
        valid = pair.valid
        write_image(out_mask, np.full(shape, 255, np.uint8) if valid is None else mask_image(valid))
    write_text(json.dumps(report, indent=2, sort_keys=True), report_json)
    return report


COMMAND = "normalize"
HELP = "contrast-normalize a registered pair to 8 bits"


def add_pair_settings_argument(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--pair-settings",
        type=pair_settings_arg,
        default=UNSET,
        help="JSON: mct_page, sem_page (a page of a stack), mct_series, sem_series; mct_scale "
        "(integer or auto: up-sample the micro-CT onto the SEM grid), crop [y0, x0, h, w], "
        "mask (none, auto_fov or a mask image path)",
    )


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--sample", default="sample")
    s.add_argument("--mct", required=True)
    s.add_argument("--sem", required=True)
    s.add_argument("--params", type=json_arg, default={})
    add_pair_settings_argument(s)
    s.add_argument(
        "--min-size",
        type=int,
        default=2,
        help="smallest allowed side (the rotation-safe footprint)",
    )
    s.add_argument("--out-mct", required=True)
    s.add_argument("--out-sem", required=True)
    s.add_argument("--report", required=True)
    s.add_argument("--out-mask", help="write the valid-area mask here (8-bit, 255 = valid)")


def run(a: argparse.Namespace) -> None:
    normalize_pair(
        a.mct,
        a.sem,
        a.out_mct,
        a.out_sem,
        a.report,
        a.params,
        sample=a.sample,
        settings=a.pair_settings,
        min_size=a.min_size,
        out_mask=a.out_mask,
    )
