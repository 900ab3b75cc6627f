"""pix2pix-style cGAN of the study (seed §3.1): the UNet1 generator and a spectral-norm PatchGAN.

Shapes for a 512x512 input (what the seed states, and what the tests check):

* ``UNet1``: Conv2d(1,64,4,2,1) 512->256, Conv2d(64,128,4,1,1) 256->255,
  ConvTranspose2d(128,64,4,2,1) 255->510, bilinear resize 510->512, concat the input (65 ch),
  1x1 conv 65->1, tanh.  The seed lists no norm/activation after the "mid" conv, so there is none.
* ``PatchDiscriminator``: k4 convs with padding 1 and strides 2,2,2,1 give
  512->256->128->64->63, and the final 1x1 conv (padding 0) keeps 63x63.  Every conv, the final
  1x1 included, is wrapped in spectral norm.  InstanceNorm2d + LeakyReLU(0.2) follow each of the
  four k4 convs (the seed says "each followed by"; pix2pix leaves the first unnormalized, we
  follow the seed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UNet1(nn.Module):
    """Lightweight generator x_mct (B,1,H,W) in [-1,1] -> x_sem_hat (B,1,H,W) in [-1,1]."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1),
            nn.InstanceNorm2d(width),
            nn.LeakyReLU(0.2),
        )
        self.mid = nn.Conv2d(width, 2 * width, 4, 1, 1)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
        )
        self.out = nn.Conv2d(width + in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dec(self.mid(self.enc(x)))
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
        h = torch.cat([h, x.to(h.dtype)], dim=1)
        return torch.tanh(self.out(h))


class PatchDiscriminator(nn.Module):
    """PatchGAN D([x_mct, x]) -> (B,1,h,w) patch scores (raw, for hinge losses)."""

    def __init__(
        self,
        in_channels: int = 2,
        channels: tuple[int, ...] = (64, 128, 256, 512),
        strides: tuple[int, ...] = (2, 2, 2, 1),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out, s in zip(channels, strides, strict=True):
            layers += [
                spectral_norm(nn.Conv2d(c_in, c_out, 4, s, 1)),
                nn.InstanceNorm2d(c_out),
                nn.LeakyReLU(0.2),
            ]
            c_in = c_out
        layers.append(spectral_norm(nn.Conv2d(c_in, 1, 1, 1, 0)))
        self.net = nn.Sequential(*layers)

    def forward(self, mct: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([mct, x], dim=1))


def d_hinge_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """L_D = E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def g_loss(
    d_fake: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, lambda_l1: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_G = -E[D(fake)] + lambda_L1 * E|real - fake|; returns (total, adversarial, l1)."""
    adv = -d_fake.mean()
    l1 = F.l1_loss(fake, real)
    return adv + lambda_l1 * l1, adv, l1


def build_cgan(cfg: dict | None = None) -> tuple[UNet1, PatchDiscriminator]:
    """Generator and discriminator of the seed (architecture is fixed; cfg kept for symmetry)."""
    return UNet1(), PatchDiscriminator()


def cgan_arch_signature(cfg: dict | None = None) -> dict:
    """What fixes the cGAN's networks (must match to resume a checkpoint)."""
    return {"generator": "UNet1(1,64)", "discriminator": "PatchGAN-SN(2,64,128,256,512)"}


def build_cgan_models(cfg: dict) -> dict:
    """``{"G": UNet1, "D": PatchDiscriminator}``."""
    g, d = build_cgan(cfg)
    return {"G": g, "D": d}
