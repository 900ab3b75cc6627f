"""Conditional DDPM denoiser: diffusers ``UNet2DModel`` on [x_t^sem, x^mct] -> eps^sem (seed §3.2).

Built from config only (no hub access).  ``unet`` config keys (defaults in ``UNET_DEFAULTS``):
``block_out_channels``, ``layers_per_block``, ``attention_levels`` (one bool per level, True =
Attn{Down,Up}Block2D at that resolution), ``norm_num_groups``, ``attention_head_dim``, ``dropout``, ``mid_attention`` (self-attention in the
bottleneck block).
"""

from __future__ import annotations

import torch
from diffusers import UNet2DModel
from torch import nn

from rocksr.config.ddpm import UNet
from rocksr.config.merge import merge_known, section_defaults
from rocksr.models.cpu_runtime import ort_runner

UNET_DEFAULTS: dict = section_defaults(UNet)

# Inference on a CPU runs the U-Net on micro-batches of at most this many pixels, through ONNX
# Runtime for calls of at least one 128 px tile of a network of at least 100,000 parameters
# (rocksr.models.cpu_runtime), else PyTorch: for
# the demo DDPM (16 tiles of 128 px, DDIM-10, 2 threads) 2.0-2.2x the images x steps per second
# of one PyTorch call per batch, outputs within 3e-6 (benchmarks/unet_inference.py;
# docs/benchmarks.md). Training and GPUs take the whole batch through PyTorch.
CPU_MICRO_BATCH_PIXELS = 4 * 128 * 128


def unet_config(cfg: dict | None) -> dict:
    """Fill defaults and validate an ``ddpm.unet`` section; returns a plain dict."""
    out = merge_known(UNET_DEFAULTS, cfg, "ddpm.unet")
    out["block_out_channels"] = [int(c) for c in out["block_out_channels"]]
    levels = out.get("attention_levels")
    n = len(out["block_out_channels"])
    if levels is None or len(levels) != n:
        raise ValueError(f"ddpm.unet.attention_levels needs {n} booleans, got {levels!r}")
    out["attention_levels"] = [bool(a) for a in levels]
    g = int(out["norm_num_groups"])
    bad = [c for c in out["block_out_channels"] if c % g]
    if bad:
        raise ValueError(f"ddpm.unet.block_out_channels {bad} not divisible by norm_num_groups={g}")
    return out


def unet_arch(cfg: dict | None) -> dict:
    """The keys of an ``unet`` section that fix the network's shape: all but ``zero_init``, an
    initialisation (a checkpoint's weights replace it, and runs from before the option resume)."""
    out = unet_config(cfg)
    out.pop("zero_init")
    return out


class ConditionalUNet(nn.Module):
    """eps_theta([x_t^sem, x^mct], t): (B,2,H,W), (B,) int -> (B,1,H,W).

    ``in_channels``: 2 for [x_t, micro-CT]; 3 with a prior image as a third input channel.
    H and W must be divisible by 2**(len(block_out_channels)-1).
    """

    def __init__(self, cfg: dict | None = None, in_channels: int = 2) -> None:
        super().__init__()
        c = unet_config(cfg)
        self.config = c
        down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in c["attention_levels"])
        up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(c["attention_levels"]))
        self.unet = UNet2DModel(
            in_channels=int(in_channels),
            out_channels=1,
            block_out_channels=tuple(c["block_out_channels"]),
            layers_per_block=int(c["layers_per_block"]),
            down_block_types=down,
            up_block_types=up,
            norm_num_groups=int(c["norm_num_groups"]),
            attention_head_dim=int(c["attention_head_dim"]),
            dropout=float(c["dropout"]),
            add_attention=bool(c["mid_attention"]),
        )
        if c["zero_init"]:
            zero_init(self.unet)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or torch.is_grad_enabled() or self.training:
            return self.unet(x, t, return_dict=False)[0]
        n = x.shape[0]
        t = torch.as_tensor(t, device=x.device)
        t = t.reshape(-1).expand(n) if t.numel() == 1 else t
        runner = ort_runner(self, self.unet, self.unet.config.in_channels)
        if runner is not None and runner.ready(x, t):
            run = runner
        else:
            run = lambda xi, ti: self.unet(xi, ti, return_dict=False)[0]  # noqa: E731
        size = max(1, CPU_MICRO_BATCH_PIXELS // (x.shape[-2] * x.shape[-1]))
        if n <= size:
            return run(x, t)
        parts = zip(x.split(size), t.split(size), strict=True)
        return torch.cat([run(xi, ti) for xi, ti in parts])


def zero_init(unet: UNet2DModel) -> None:
    """Zero the weights and biases of ``unet``'s output convolution, of the last convolution of
    each residual block and of each attention's output projection (Ho et al. 2020's
    ``init_scale=0``; guided-diffusion's ``zero_module``). Each residual block and attention then
    starts as the identity of its input (its shortcut) and the network outputs 0: a DDPM that
    generates the residual over a prior starts as that prior, and gradients reach the blocks from
    the output inwards. On the demo this gave the DDPM's single samples more texture at the same
    steps and the regression U-Net +0.2 dB at 750 steps (docs/models.md)."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.resnet import ResnetBlock2D

    layers = [unet.conv_out]
    for module in unet.modules():
        if isinstance(module, ResnetBlock2D):
            layers.append(module.conv2)
        elif isinstance(module, Attention):
            layers.append(module.to_out[0])
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            if layer.bias is not None:
                layer.bias.zero_()


def build_ddpm_unet(cfg: dict | None = None) -> ConditionalUNet:
    return ConditionalUNet(cfg)


def ddpm_arch_signature(cfg: dict) -> dict:
    """What fixes the DDPM: the U-Net, the noise schedule and what the network outputs (a
    checkpoint trained to predict x0 cannot be resumed or sampled as an eps model; older
    checkpoints: epsilon)."""
    from rocksr.diffusion.schedule import schedule_config

    out = {
        "unet": unet_arch(cfg.get("unet")),
        "schedule": schedule_config(cfg.get("schedule")),
        "prediction": str(cfg.get("prediction", "epsilon")),
    }
    prior = str(cfg.get("prior") or "none")
    if prior != "none":  # a third input channel (absent: the seed's conditioning)
        out["prior"] = prior
    return out


def build_ddpm_models(cfg: dict) -> dict:
    """``{"unet": ConditionalUNet}``: on [x_t, micro-CT], or [x_t, micro-CT, prior] with a prior."""
    channels = 2 if str(cfg.get("prior") or "none") == "none" else 3
    return {"unet": ConditionalUNet(cfg.get("unet"), in_channels=channels)}
