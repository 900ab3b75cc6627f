"""Kind ``cgan``: the study's pix2pix cGAN (UNet1 generator, spectral-norm PatchGAN; seed §3.1)."""

from __future__ import annotations

from typing import Any

from rocksr.config.cgan import CGAN
from rocksr.models.registry import ModelKind, Predictor, deterministic_predictor, load_network


def _build(cfg: dict) -> dict:
    from rocksr.models.cgan import build_cgan_models

    return build_cgan_models(cfg)


def _arch(cfg: dict) -> dict:
    from rocksr.models.cgan import cgan_arch_signature

    return cgan_arch_signature(cfg)


def _task() -> type:
    from rocksr.training.cgan_task import CGANTask

    return CGANTask


def _inference(ckpt: dict, cfg: dict, device: str, path: Any = None) -> Any:
    """The generator (a cGAN has no EMA)."""
    return load_network(_build(cfg)["G"], ckpt, "G", device)


def _predictor(model: Any, cfg: dict, sampler: str = "ddim", steps: int | None = None) -> Predictor:
    return deterministic_predictor(model)


KIND = ModelKind(
    name="cgan",
    description="pix2pix conditional GAN (the study's UNet1 generator + PatchGAN, hinge + L1)",
    section=CGAN,
    stochastic=False,
    build=_build,
    arch=_arch,
    task=_task,
    inference=_inference,
    predictor=_predictor,
    curves=(
        ("generator L1", ("g_l1",), ("val_l1",)),
        ("adversarial", ("loss_d", "g_adv"), ()),
    ),
    inference_networks=("G",),
    # the generator resizes its 126² decoder output to 128², shifting each tile's content by up
    # to ±1 px towards its borders: half-and-half blends of two tiles blur and leave a band at
    # the tile period (excess 0.175 over the truth's null at overlap ½, Gaussian; 0.040 at ¾,
    # cosine: docs/evaluation.md, "Banding at the tile period")
    enhance_overlap=0.75,
    enhance_window="cosine",
)
