"""Model kinds: build the networks of a kind and its architecture signature (for inference)."""

from __future__ import annotations

from torch import nn

from rocksr.models.cgan import build_cgan_models, cgan_arch_signature
from rocksr.models.unet import build_ddpm_models, ddpm_arch_signature

KINDS = ("cgan", "ddpm")


def arch_signature(kind: str, cfg: dict) -> dict:
    """Config values that fix the network (and sampling maths); must match to resume."""
    if kind == "cgan":
        return cgan_arch_signature(cfg)
    if kind == "ddpm":
        return ddpm_arch_signature(cfg)
    raise ValueError(f"unknown model kind {kind!r} (one of {KINDS})")


def build_models(kind: str, cfg: dict) -> dict[str, nn.Module]:
    """{'G': UNet1, 'D': PatchDiscriminator} for the cGAN, {'unet': ConditionalUNet} for the DDPM."""
    if kind == "cgan":
        return build_cgan_models(cfg)
    if kind == "ddpm":
        return build_ddpm_models(cfg)
    raise ValueError(f"unknown model kind {kind!r} (one of {KINDS})")
