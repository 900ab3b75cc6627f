"""Kind ``regress``: the deterministic regression U-Net (rocksr's CNN baseline; L1 [+ FFT L1])."""

from __future__ import annotations

from typing import Any

from rocksr.config.ddpm import unet_downsampling_factor
from rocksr.config.regress import Regress
from rocksr.models.registry import ModelKind, Predictor, deterministic_predictor, load_network


def _build(cfg: dict) -> dict:
    from rocksr.models.regress import build_regress_models

    return build_regress_models(cfg)


def _arch(cfg: dict) -> dict:
    from rocksr.models.regress import regress_arch_signature

    return regress_arch_signature(cfg)


def _task() -> type:
    from rocksr.training.regress_task import RegressTask

    return RegressTask


def _inference(ckpt: dict, cfg: dict, device: str, path: Any = None) -> Any:
    """The network with its EMA weights when the checkpoint has them."""
    return load_network(_build(cfg)["net"], ckpt, "net", device)


def _predictor(model: Any, cfg: dict, sampler: str = "ddim", steps: int | None = None) -> Predictor:
    return deterministic_predictor(model)


KIND = ModelKind(
    name="regress",
    description="regression U-Net (the DDPM's U-Net blocks, micro-CT in, SEM out; L1 [+ FFT L1])",
    section=Regress,
    stochastic=False,
    build=_build,
    arch=_arch,
    task=_task,
    inference=_inference,
    predictor=_predictor,
    tile_multiple=lambda cfg: unet_downsampling_factor(cfg.get("unet")),
    curves=(
        ("loss", ("l1", "fft_l1"), ("val_l1",)),
        ("validation: PSNR (dB)", (), ("val_psnr",)),
        ("validation: SSIM", (), ("val_ssim",)),
    ),
    inference_networks=("net",),
    log_loss=True,
)
