"""What the config alone decides, checked before any job runs: every problem, listed together.

Called by the workflow after schema validation (``check_feasibility(config)``). The checks need
no pixels: the U-Net's down-sampling factor against the tile (and crop) size; each sample's
images (their headers only: missing or unreadable files, pages outside a stack, shapes that
differ without ``mct_scale``, a crop outside the image, a mask image of the wrong shape) and the rotation-safe footprint against
them; block counts against the split fractions; hold-out names against the samples.
"""

from __future__ import annotations

from rocksr.config.ddpm import unet_downsampling_factor
from rocksr.config.merge import ConfigError


def _tile_problems(config: dict) -> list[str]:
    from rocksr.data.tiling import footprint_size

    problems = []
    tiling, ddpm = config.get("tiling") or {}, config.get("ddpm") or {}
    size = int(tiling.get("size", 512))
    f = unet_downsampling_factor(ddpm.get("unet"))
    if size % f:
        problems.append(
            f"tiling.size {size} is not divisible by {f}, the down-sampling factor of the DDPM "
            f"U-Net with {f.bit_length()} levels "
            "(ddpm.unet.block_out_channels): change one of them"
        )
    crop = ddpm.get("crop")
    if crop is not None and (int(crop) % f or int(crop) > size):
        problems.append(f"ddpm.crop {crop} must be at most tiling.size {size} and divisible by {f}")
    need = footprint_size(size)
    for s in config.get("samples") or []:
        shape, problem = _sample_shape(s)
        problem = problem or _synthetic_mask_problem(s)
        if problem:
            problems.append(problem)
        elif shape and min(shape) < need:
            problems.append(
                f"sample {s['name']!r}: {shape[0]}x{shape[1]} is smaller than one "
                f"rotation-safe footprint of a {size} px tile ({need} px): use a larger image "
                "or a smaller tiling.size"
            )
    return problems


def _sample_shape(s: dict) -> tuple[tuple[int, int] | None, str | None]:
    """(registered shape, problem) of a sample, from the config or the image headers only."""
    syn = s.get("synthetic")
    if syn:
        return (int(syn["height"]), int(syn["width"])), None
    from rocksr.data.images import ImageError, image_shape
    from rocksr.data.registration import scale_factor

    name = s.get("name")
    try:
        mct = image_shape(s["mct"], s.get("mct_page"), s.get("mct_series"))
        sem = image_shape(s["sem"], s.get("sem_page"), s.get("sem_series"))
        f = scale_factor(s.get("mct_scale"), mct, sem, f"sample {name!r}")
    except (ImageError, KeyError) as exc:
        return None, f"sample {name!r}: {exc}"
    raw_mct, mct = mct, (mct[0] * f, mct[1] * f)
    if mct != sem:
        return None, (
            f"sample {name!r}: micro-CT {mct[0]}x{mct[1]}"
            + (f" (after mct_scale {f})" if f > 1 else "")
            + f" and SEM {sem[0]}x{sem[1]} differ; register them, or set mct_scale (an integer"
            " or auto) if the micro-CT has a coarser pixel size"
        )
    problem = _mask_problem(s, raw_mct, sem, f)
    if problem:
        return None, problem
    crop = s.get("crop")
    if crop:
        y0, x0, h, w = (int(v) for v in crop)
        if y0 + h > sem[0] or x0 + w > sem[1]:
            return None, f"sample {name!r}: crop {list(crop)} leaves the {sem[0]}x{sem[1]} image"
        return (h, w), None
    return sem, None


def _mask_problem(s: dict, raw_mct: tuple, sem: tuple, factor: int) -> str | None:
    """A mask image that is missing, unreadable or of neither allowed shape (header only)."""
    from rocksr.data.images import ImageError, image_shape
    from rocksr.data.masks import MASK_MODES, mask_shape_problem, mask_spec_problem

    spec, name = s.get("mask"), s.get("name")
    if not spec or spec in MASK_MODES:
        return None
    if mask_spec_problem(spec):
        return f"sample {name!r}: {mask_spec_problem(spec)}"
    try:
        shape = image_shape(spec, None, None)
    except ImageError as exc:
        return f"sample {name!r}: mask: {exc}"
    problem = mask_shape_problem(shape, sem, raw_mct, factor)
    return f"sample {name!r}: {spec}: {problem}" if problem else None


def _synthetic_mask_problem(s: dict) -> str | None:
    """A synthetic sample's mask: auto_fov has no field of view to find; an image must have the
    sample's size."""
    syn, spec = s.get("synthetic"), s.get("mask")
    if not syn or not spec or spec == "none":
        return None
    if spec == "auto_fov":
        return (
            f"sample {s.get('name')!r}: mask auto_fov: a synthetic sample has no circular field "
            "of view (rocksr example-data writes pairs that do); use none or a mask image"
        )
    size = (int(syn["height"]), int(syn["width"]))
    return _mask_problem(s, size, size, 1)


def _split_problems(config: dict) -> list[str]:
    split = config.get("split") or {}
    strategy = split.get("strategy", "blocks")
    fractions = split.get("fractions") or {}
    wanted = [k for k in ("train", "val", "test") if float(fractions.get(k, 0)) > 0]
    problems = []
    if strategy == "blocks":
        b = split.get("blocks") or {}
        n = int(b.get("rows", 3)) * int(b.get("cols", 3))
        if n < len(wanted):
            problems.append(
                f"split.blocks {b.get('rows', 3)}x{b.get('cols', 3)} gives {n} block(s) for "
                f"{len(wanted)} splits with a non-zero fraction ({', '.join(wanted)}): use more "
                "blocks"
            )
    if strategy == "holdout_sample":
        names = {str(s.get("name")) for s in config.get("samples") or []}
        holdout = split.get("holdout") or {}
        held = set()
        for part in ("val", "test"):
            for n in holdout.get(part) or []:
                if n not in names:
                    problems.append(
                        f"split.holdout.{part} names {n!r}, which is not a sample "
                        f"(samples: {', '.join(sorted(names))})"
                    )
                held.add(n)
        if names and names <= held:
            problems.append(
                "split.holdout holds out every sample, so nothing is left to train on: keep "
                "at least one sample out of split.holdout"
            )
        if not holdout.get("test"):
            problems.append("split.holdout.test names no sample: the test split would be empty")
    return problems


def feasibility_problems(config: dict) -> list[str]:
    """Every problem of the config that would make a later stage fail (empty list: none)."""
    return _tile_problems(config) + _split_problems(config)


def check_feasibility(config: dict) -> None:
    """Raise :class:`ConfigError` listing every problem of :func:`feasibility_problems`."""
    problems = feasibility_problems(config)
    if problems:
        raise ConfigError(
            "config: this configuration cannot run; nothing was started:\n  - "
            + "\n  - ".join(problems)
        )
