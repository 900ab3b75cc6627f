"""Kind ``ddpm``: the conditional denoising diffusion model (seed §3.2, plus rocksr's recipe)."""

from __future__ import annotations

from typing import Any

from rocksr.config.ddpm import DDPM, unet_downsampling_factor
from rocksr.models.registry import ModelKind, Predictor, load_network


def _build(cfg: dict) -> dict:
    from rocksr.models.unet import build_ddpm_models

    return build_ddpm_models(cfg)


def _arch(cfg: dict) -> dict:
    from rocksr.models.unet import ddpm_arch_signature

    return ddpm_arch_signature(cfg)


def _task() -> type:
    from rocksr.training.ddpm_task import DDPMTask

    return DDPMTask


def _inference(ckpt: dict, cfg: dict, device: str, path: Any = None) -> Any:
    """The U-Net with its EMA weights when the checkpoint has them; fills ``cfg['schedule']``.
    A predict-and-refine DDPM's prior (:mod:`rocksr.priors`) rides along as ``model.prior``
    (None without one): found from the checkpoint's record, near ``path``."""
    from rocksr.diffusion.schedule import schedule_config
    from rocksr.priors import load_prior

    model = load_network(_build(cfg)["unet"], ckpt, "unet", device)
    cfg["schedule"] = schedule_config(cfg.get("schedule"))
    model.prior = load_prior(ckpt.get("prior"), near=path, device=device)
    return model


def _predictor(model: Any, cfg: dict, sampler: str = "ddim", steps: int | None = None) -> Predictor:
    from rocksr.diffusion.sampling import sample, sampling_options

    section = cfg if "schedule" in cfg or "ddpm" not in cfg else cfg["ddpm"]
    schedule = section.get("schedule") or {}
    options = sampling_options(section)
    prior = getattr(model, "prior", None)

    def run_ddpm(mct: Any, generator: Any) -> Any:
        return sample(
            model,
            mct,
            schedule,
            sampler=sampler,
            steps=steps,
            generator=generator,
            prior=None if prior is None else prior(mct),
            **options,
        )

    return run_ddpm


KIND = ModelKind(
    name="ddpm",
    description="conditional DDPM (diffusers U-Net on [x_t, micro-CT]; sampled K times per tile)",
    section=DDPM,
    stochastic=True,
    build=_build,
    arch=_arch,
    task=_task,
    inference=_inference,
    predictor=_predictor,
    tile_multiple=lambda cfg: unet_downsampling_factor(cfg.get("unet")),
    curves=(
        ("loss", ("loss",), ("val_loss", "val_loss_ema")),
        ("validation samples: PSNR (dB)", (), ("val_psnr",)),
        ("validation samples: SSIM", (), ("val_ssim",)),
    ),
    inference_networks=("unet",),
    log_loss=True,
)
