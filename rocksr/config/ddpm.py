"""Defaults of the ``ddpm`` section: two kinds of values, said apart here.

- **The seed's**, at the study's scale (seed §3.2): the U-Net (64-128-256-512, two layers per
  block, attention at the two coarsest levels), AdamW at lr 5e-5 with weight decay 5e-4 and
  gradient clipping 0.7, the L1 loss, the linear schedule over T = 1000 and the learning rate
  reduced on plateau.
- **rocksr's recommended recipe** where the seed's did worse (docs/models.md, "Which DDPM
  recipe"): x0 prediction (``prediction: sample``), x0 clipping, EMA weights (0.999),
  selection of the checkpoint on the PSNR of sampled validation tiles, DDIM-10 validation
  sampling. The seed's own recipe is
  ``prediction: epsilon``, ``threshold.mode: none``, ``select_on: val_loss``
  (``configs/paper.yaml`` sets it).

``prior`` defaults to ``none``, the seed's conditioning. ``config.yaml``'s demo values (a small
U-Net, lr 1e-3, 1,500 steps on 64 px crops, ``prior: regress``, ``select_on: val_loss``) are
sized for a 2-core CPU and written there, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rocksr.config.training import Loop


@dataclass
class Schedule:
    """The noise schedule (seed §3.2: T = 1000, linear 1e-4 -> 0.02)."""

    timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02


@dataclass
class Threshold:
    """x0 thresholding at every sampling step: none | clip (to +-range) | dynamic (Imagen)."""

    mode: str = "clip"
    range: float = 1.0
    ratio: float = 0.995


@dataclass
class UNet:
    """The conditional U-Net (diffusers' UNet2DModel on [x_t, micro-CT])."""

    block_out_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    layers_per_block: int = 2
    attention_levels: list[bool] = field(default_factory=lambda: [False, False, True, True])
    norm_num_groups: int = 32
    attention_head_dim: int = 8
    dropout: float = 0.0
    mid_attention: bool = True
    # True: the output convolution, each residual block's last convolution and each attention
    # output start at zero, as in Ho et al.'s DDPM and guided-diffusion (``zero_module``): every
    # block starts as the identity and the network's output at 0, so a DDPM with a prior starts
    # as its prior (rocksr.models.unet.zero_init). False: diffusers' initialisation (the seed's).
    zero_init: bool = False


@dataclass
class EMA:
    enabled: bool = True
    decay: float = 0.999


@dataclass
class Plateau:
    enabled: bool = True
    factor: float = 0.5
    patience: int = 5
    min_lr: float = 0.0


@dataclass
class DDPM(Loop):
    lr: float = 5e-5
    weight_decay: float = 5e-4
    grad_clip: float | None = 0.7
    loss: str = "l1"
    prediction: str = "sample"
    min_snr_gamma: float | None = None
    threshold: Threshold = field(default_factory=Threshold)
    crop: int | None = None
    warmup_steps: int = 0
    select_on: str = "val_psnr"
    val_sample_tiles: int = 8
    val_sampler: str = "ddim"
    val_sampler_steps: int | None = 10
    prior: str = "none"
    prior_checkpoint: str | None = None
    schedule: Schedule = field(default_factory=Schedule)
    unet: UNet = field(default_factory=UNet)
    ema: EMA = field(default_factory=EMA)
    plateau: Plateau = field(default_factory=Plateau)


def unet_downsampling_factor(unet: dict | None) -> int:
    """How many times the U-Net halves its input: ``2 ** (levels - 1)`` of
    ``ddpm.unet.block_out_channels`` (the default U-Net's when unset). Tile and crop sizes must
    be multiples of it."""
    channels = (unet or {}).get("block_out_channels") or UNet().block_out_channels
    return 2 ** (len(channels) - 1)
