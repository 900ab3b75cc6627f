"""The regression U-Net: micro-CT (B,1,H,W) -> SEM (B,1,H,W), both in [-1, 1].

diffusers' ``UNet2DModel`` with the DDPM's blocks (:class:`rocksr.models.unet.ConditionalUNet`
with one input channel) and its timestep input held at 0: the same network family and size as
the DDPM's denoiser, trained as a deterministic regressor (the CNN-SR baselines SRCNN,
MS-ResUNet and EDSR stand for).
"""

from __future__ import annotations

import torch
from torch import nn

from rocksr.models.unet import ConditionalUNet, unet_arch


class RegressionUNet(nn.Module):
    """``f(mct) -> SEM``: the U-Net's output, unbounded (clamp to [-1, 1] at inference)."""

    def __init__(self, cfg: dict | None = None) -> None:
        super().__init__()
        self.net = ConditionalUNet(cfg, in_channels=1)

    def forward(self, mct: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(mct.shape[0], dtype=torch.long, device=mct.device)
        return self.net(mct, t)


def regress_arch_signature(cfg: dict) -> dict:
    """What fixes the regression U-Net: its blocks."""
    return {"unet": unet_arch(cfg.get("unet"))}


def build_regress_models(cfg: dict) -> dict:
    """``{"net": RegressionUNet}``."""
    return {"net": RegressionUNet(cfg.get("unet"))}
