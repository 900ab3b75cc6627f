"""Defaults of the ``regress`` section: the deterministic regression U-Net (rocksr's CNN baseline).

The CNN-SR family of the study's related work (SRCNN, MS-ResUNet, EDSR): one network maps the
micro-CT tile to the SEM tile and is trained with L1, optionally plus a frequency-domain L1
(``fft_weight``, as in ResDiff). Its U-Net has the same blocks as the DDPM's (``unet``), without
the noisy-image input, so that the two are compared at equal size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rocksr.config.ddpm import EMA, UNet
from rocksr.config.training import Loop


@dataclass
class Regress(Loop):
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    fft_weight: float = 0.0
    crop: int | None = None
    select_on: str = "val_psnr"
    unet: UNet = field(default_factory=UNet)
    ema: EMA = field(default_factory=EMA)
