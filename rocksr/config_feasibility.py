"""What the config alone decides, checked before any job runs: every problem, listed together.

Called by the workflow after schema validation (``check_feasibility(config)``). The checks need
no pixels: the U-Net's down-sampling factor against the tile (and crop) size, the
rotation-safe footprint against the images whose size the config gives (synthetic samples),
block counts against the split fractions, hold-out names against the samples.
"""

from __future__ import annotations

from rocksr.config.merge import ConfigError


def _unet_factor(ddpm: dict) -> int:
    channels = (ddpm.get("unet") or {}).get("block_out_channels") or [64, 128, 256, 512]
    return 2 ** (len(channels) - 1)


def _tile_problems(config: dict) -> list[str]:
    from rocksr.data.tiling import footprint_size

    problems = []
    tiling, ddpm = config.get("tiling") or {}, config.get("ddpm") or {}
    size = int(tiling.get("size", 512))
    f = _unet_factor(ddpm)
    if size % f:
        problems.append(
            f"tiling.size {size} is not divisible by {f}, the down-sampling factor of the DDPM "
            f"U-Net with {len(ddpm.get('unet', {}).get('block_out_channels', [0] * 4))} levels "
            "(ddpm.unet.block_out_channels): change one of them"
        )
    crop = ddpm.get("crop")
    if crop is not None and (int(crop) % f or int(crop) > size):
        problems.append(f"ddpm.crop {crop} must be at most tiling.size {size} and divisible by {f}")
    need = footprint_size(size)
    for s in config.get("samples") or []:
        syn = s.get("synthetic")
        if syn and min(int(syn["height"]), int(syn["width"])) < need:
            problems.append(
                f"sample {s['name']!r}: {syn['height']}x{syn['width']} is smaller than one "
                f"rotation-safe footprint of a {size} px tile ({need} px): make the image "
                "larger or tiling.size smaller"
            )
    return problems


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
