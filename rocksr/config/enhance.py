"""Defaults of the ``enhance`` section: whole-slice inference and its seam study."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Enhance:
    """``rocksr enhance`` on each sample's whole micro-CT, as the `enhance` rule runs it.

    ``overlap`` and ``window`` None = the model kind's own defaults (its registry entry:
    half a tile and a Gaussian window; the cGAN three quarters and a cosine window, which keep
    its whole slices free of banding at the tile period, docs/evaluation.md); the sampler and
    its steps are ``evaluate.sampler/steps``.
    """

    enabled: bool = True
    overlap: int | None = None
    window: str | None = None
    fuse: str = "step"
    batch_size: int = 16
    seed: int = 0
    seam_study: bool = True  # the seam study (rule seam_study) on the first sample
    seam_crop: int = 512  # side of the crop the seam study enhances in every mode
    figure_crop: int = 384  # side of the full-resolution crop in figures/enhance.png
