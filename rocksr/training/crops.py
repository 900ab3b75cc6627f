"""Training on random crops of the tiles, and the tile-size check of a U-Net (shared by the
U-Net kinds; no model code, so that each kind's code hash stays its own)."""

from __future__ import annotations

import torch

from rocksr.config.ddpm import unet_downsampling_factor
from rocksr.training.distributed import SINGLE, Dist


def random_crops(
    mct: torch.Tensor, sem: torch.Tensor, size: int, gen: torch.Generator, dist: Dist = SINGLE
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size``x``size`` window of each (mct, sem) pair; offsets from ``gen``,
    drawn for the global batch of which ``mct`` is this process's part (``dist``)."""
    b, _, h, w = mct.shape
    if size >= h and size >= w:
        return mct, sem
    if size > h or size > w:
        raise ValueError(f"crop {size} is larger than the {h}x{w} tiles")
    n = b * dist.world
    ys = dist.local(torch.randint(0, h - size + 1, (n,), generator=gen, device=gen.device))
    xs = dist.local(torch.randint(0, w - size + 1, (n,), generator=gen, device=gen.device))
    ys, xs = ys.tolist(), xs.tolist()
    windows = list(enumerate(zip(ys, xs, strict=True)))
    mc = torch.stack([mct[i, :, y : y + size, x : x + size] for i, (y, x) in windows])
    sc = torch.stack([sem[i, :, y : y + size, x : x + size] for i, (y, x) in windows])
    return mc, sc


def check_unet_tiles(section: str, cfg: dict, tile: int, store: object) -> None:
    """The tiles (and ``cfg['crop']``) must fit the U-Net's down-sampling factor; ``section``
    names the config section in the message."""
    levels = unet_downsampling_factor(cfg["unet"]).bit_length() - 1
    crop = cfg.get("crop")
    if crop is not None and (int(crop) % 2**levels or int(crop) > tile):
        raise ValueError(
            f"{section}.crop {crop} must be at most the tile size {tile} of {store} and divisible "
            f"by 2**{levels} = {2**levels} (the U-Net's down-sampling factor)"
        )
    if tile % 2**levels:
        raise ValueError(
            f"{store}: tile size {tile} is not divisible by 2**{levels} = {2**levels}, "
            f"which the {section} U-Net with {levels + 1} levels needs; change tiling.size "
            f"or {section}.unet.block_out_channels"
        )
