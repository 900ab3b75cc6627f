"""What the config alone decides, checked before any job runs: every problem, listed together.

Called by the workflow after schema validation (``check_feasibility(config)``). The checks need
no pixels: the U-Net's down-sampling factor against the tile (and crop) size; each sample's
images (their headers only: missing or unreadable files, pages outside a stack, shapes that
differ without ``mct_scale``, a crop outside the image, a mask image of the wrong shape) and the rotation-safe footprint against
them; block counts against the split fractions, an empty train or test split; hold-out names
against the samples; the DDPM's noise schedule (beta order) and every sampler's step count against
its timesteps.

:func:`check_distinct_images` refuses, in one line, an image that two samples share (or a
sample's micro-CT that is its SEM): a split that keeps samples apart would leak.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from rocksr.config.ddpm import DDPM, unet_downsampling_factor
from rocksr.config.evaluate import Evaluate
from rocksr.config.merge import ConfigError, resolve
from rocksr.config.split import Blocks, Split


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
        mct = image_shape(s["mct"], s.get("mct_page"), s.get("mct_series"), key="mct")
        sem = image_shape(s["sem"], s.get("sem_page"), s.get("sem_series"), key="sem")
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
        shape = image_shape(spec, None, None, key="mask")
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
    strategy = split.get("strategy", Split.strategy)
    fractions = split.get("fractions") or Split().fractions
    wanted = [k for k in ("train", "val", "test") if float(fractions.get(k, 0)) > 0]
    problems = []
    if strategy != "holdout_sample":
        for part, need in (("train", "nothing to train on"), ("test", "nothing to evaluate")):
            if part not in wanted:
                problems.append(
                    f"split.fractions.{part} is {fractions.get(part, 0)}: the {part} split would "
                    f"be empty, so there is {need}; give {part} a positive fraction"
                )
    if strategy == "blocks":
        b = {"rows": Blocks.rows, "cols": Blocks.cols, **(split.get("blocks") or {})}
        n = int(b["rows"]) * int(b["cols"])
        if n < len(wanted):
            problems.append(
                f"split.blocks {b['rows']}x{b['cols']} gives {n} block(s) for "
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


def _diffusion_problems(config: dict) -> list[str]:
    """The noise schedule's betas, and every sampler step count against its timesteps."""
    ddpm = resolve(DDPM, config.get("ddpm"), "ddpm")
    schedule = ddpm["schedule"]
    timesteps = int(schedule["timesteps"])
    start, end = float(schedule["beta_start"]), float(schedule["beta_end"])
    problems = []
    if not 0 < start < end < 1:
        problems.append(
            f"ddpm.schedule: beta_start {start:g} and beta_end {end:g} must satisfy "
            "0 < beta_start < beta_end < 1 (the noise grows over the steps)"
        )
    evaluate = resolve(Evaluate, config.get("evaluate"), "evaluate")
    uses = [("evaluate.steps", evaluate["sampler"], evaluate["steps"])]
    if ddpm["val_sampler"] != "ancestral":  # validation's ancestral sampling ignores its steps
        uses.append(("ddpm.val_sampler_steps", ddpm["val_sampler"], ddpm["val_sampler_steps"]))
    study = evaluate["sampler_study"]
    if study["enabled"]:
        for i, c in enumerate(study["configs"] or []):
            steps = c.get("steps")
            for n in steps if isinstance(steps, list) else [steps]:
                uses.append((f"evaluate.sampler_study.configs[{i}].steps", c["sampler"], n))
    problems += [p for use in uses if (p := _steps_problem(*use, timesteps))]
    return problems


def _steps_problem(key: str, sampler: str, steps: object, timesteps: int) -> str | None:
    """Why ``sampler`` cannot take ``steps`` (None: its default) with a ``timesteps`` schedule."""
    if sampler == "ancestral":
        if steps in (None, timesteps):
            return None
        return (
            f"{key} {steps}: the ancestral sampler runs all ddpm.schedule.timesteps "
            f"({timesteps}) steps; set {key} to null, or use ddim or dpmsolver for fewer"
        )
    if steps is None:
        from rocksr.diffusion.sampling import DEFAULT_STEPS  # imports torch: only when needed

        steps, why = DEFAULT_STEPS[sampler], f" ({sampler}'s default for {key} null)"
    else:
        why = ""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        return f"{key} {steps!r} is not a positive integer number of sampler steps"
    if steps > timesteps:
        return (
            f"{key} {steps}{why} is more than ddpm.schedule.timesteps {timesteps}: {sampler} "
            f"takes at most that many steps; lower {key} or raise ddpm.schedule.timesteps"
        )
    return None


def feasibility_problems(config: dict) -> list[str]:
    """Every problem of the config that would make a later stage fail (empty list: none)."""
    return _tile_problems(config) + _split_problems(config) + _diffusion_problems(config)


def check_feasibility(config: dict) -> None:
    """Raise :class:`ConfigError` listing every problem of :func:`feasibility_problems`."""
    problems = feasibility_problems(config)
    if problems:
        raise ConfigError(
            "config: this configuration cannot run; nothing was started:\n  - "
            + "\n  - ".join(problems)
        )


def _sample_images(s: dict) -> Iterator[tuple[str, str, str, tuple[int, int]]]:
    """``(key, path, real path, (page, series))`` of each existing image file of a sample."""
    for key in ("mct", "sem"):
        path = s.get(key)
        if isinstance(path, str) and os.path.isfile(path):
            selection = (s.get(f"{key}_page") or 0, s.get(f"{key}_series") or 0)
            yield key, path, os.path.realpath(path), selection


def _file_identities(paths: set[str]) -> dict[str, str]:
    """Each real path -> the first (sorted) of the paths whose bytes are the same; files are
    hashed only when another file has their size."""
    from rocksr.files import sha256_file

    by_size: dict[int, list[str]] = {}
    for p in sorted(paths):
        by_size.setdefault(os.path.getsize(p), []).append(p)
    same = {p: p for p in paths}
    for group in by_size.values():
        first_of: dict[str, str] = {}
        for p in group if len(group) > 1 else []:
            same[p] = first_of.setdefault(sha256_file(p), p)
    return same


def identical_images_problem(samples: list[dict]) -> str | None:
    """The first image two samples share, or a sample's micro-CT that is its SEM (the same file,
    or files of identical bytes, with the same page and series); None: every image is its own.
    Two synthetic samples with the same settings are the same images too."""
    entries = [(s.get("name"), *e) for s in samples for e in _sample_images(s)]
    same = _file_identities({real for *_, real, _ in entries})
    seen: dict[tuple, tuple[str, str, str, str]] = {}
    for name, key, path, real, selection in entries:
        image = (same[real], selection)
        if image not in seen:
            seen[image] = (name, key, path, real)
            continue
        other, other_key, other_path, other_real = seen[image]
        how = "the same file" if real == other_real else f"identical to {other_path}"
        if other == name:
            return (
                f"config: sample {name!r}: its mct and sem are the same image ({path}, {how}); "
                "give the pair's micro-CT and SEM"
            )
        return (
            f"config: samples {other!r} ({other_key}) and {name!r} ({key}) use the same image "
            f"({path}, {how}): a split that keeps samples apart would put the same pixels in "
            "two splits; give each sample its own images"
        )
    synthetic: dict[str, str] = {}
    for s in samples:
        if isinstance(s.get("synthetic"), dict):
            spec = json.dumps(s["synthetic"], sort_keys=True)
            if spec in synthetic:
                return (
                    f"config: samples {synthetic[spec]!r} and {s.get('name')!r} have the same "
                    "synthetic settings, so the same images: give them different seeds"
                )
            synthetic[spec] = s.get("name")
    return None


def check_distinct_images(samples: list[dict]) -> None:
    """Raise :class:`ConfigError` (one line) for :func:`identical_images_problem`."""
    problem = identical_images_problem(samples)
    if problem:
        raise ConfigError(problem)
