"""The named choices of rocksr's settings, in one torch-free place (the CLI's argparse choices,
the config checks and the modules that implement them all read these)."""

from __future__ import annotations

SAMPLERS = ("ancestral", "ddim", "dpmsolver")  # rocksr.diffusion.sampling
WINDOWS = ("gaussian", "cosine", "constant")  # tile blending weights, rocksr.enhance.blending
FUSE_MODES = ("step", "end")  # DDPM tile fusion in rocksr enhance
SLICE_NOISE = ("shared", "independent")  # a stack's DDPM noise per slice
ENHANCE_NORMALIZE = ("from-checkpoint", "percentile", "none")
LR_DECAYS = ("none", "cosine")  # the learning rate after warm-up, rocksr.training.lr_schedule
BASELINE_KIND = "baseline"  # the `kind` of a baseline's prediction store and Table 1 row


def is_baseline(row: object) -> bool:
    """Whether a Table 1 row (anything with a ``kind``) is a baseline's, not a trained model's."""
    return getattr(row, "kind", None) == BASELINE_KIND
