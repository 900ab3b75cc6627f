"""Defaults of the ``cgan`` section: pix2pix cGAN training (seed §3.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rocksr.config.training import Loop


@dataclass
class CGAN(Loop):
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    lambda_l1: float = 100.0
    crop: int | None = None  # random training crops (both networks are fully convolutional)
