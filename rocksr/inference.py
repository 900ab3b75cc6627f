"""rocksr.inference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn


def _seeded_generator(entropy: list[int], device: Any) -> Any:
    """A torch.Generator on ``device`` seeded with 64 bits of ``SeedSequence(entropy)``."""
    import torch

    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


def batch_generator(seed: int, batch_index: int, device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded from ``SeedSequence([seed, batch_index])``."""
    return _seeded_generator([seed, batch_index], device)


def sample_generator(seed: int, batch_index: int, sample_index: int, device: Any = "cpu") -> Any:
    """The generator for sample ``k = sample_index`` of batch ``b = batch_index``.

    ``k = 0``: :func:`batch_generator` ``(seed, b)`` (the single-sample prediction, bit for bit);
    ``k >= 1``: a torch.Generator seeded from ``SeedSequence([seed, b, k])``.
    """
    k = int(sample_index)
    if k < 0:
        raise ValueError(f"sample index must be >= 0, got {k}")
    if k == 0:
        return batch_generator(seed, batch_index, device)
    return _seeded_generator([seed, batch_index, k], device)


def make_predictor(
    kind: str,
    model: Any,
    cfg: dict,
    sampler: str = "ddim",
    steps: int | None = None,
) -> Callable[[Any, Any], Any]:
    """``f(mct (B,1,S,S) in [-1,1], generator) -> (B,1,S,S) in [-1,1]`` for a loaded model."""
    import torch

    if kind == "cgan":

        @torch.no_grad()
        def run_cgan(mct: Any, generator: Any) -> Any:
            return model(mct).clamp(-1.0, 1.0)

        return run_cgan
    if kind == "ddpm":
        from rocksr.diffusion.sampling import sample, sampling_options

        section = cfg if "schedule" in cfg or "ddpm" not in cfg else cfg["ddpm"]
        schedule = section.get("schedule") or {}
        options = sampling_options(section)

        def run_ddpm(mct: Any, generator: Any) -> Any:
            return sample(
                model, mct, schedule, sampler=sampler, steps=steps, generator=generator, **options
            )

        return run_ddpm
    raise ValueError(f"unknown model kind {kind!r} (cgan | ddpm)")


def load_for_inference(ckpt_path: str | Path, device: str = "cpu") -> tuple[str, nn.Module, dict]:
    """(kind, model in eval mode, config saved in the checkpoint).

    cGAN: the generator ``UNet1`` (call ``model(mct)``).  DDPM: the ``ConditionalUNet`` with EMA
    weights when the checkpoint has them (call via ``rocksr.diffusion.sample(model, mct,
    config['schedule'], ...)``).
    """
    from rocksr.checkpoints import load_checkpoint
    from rocksr.diffusion.schedule import schedule_config
    from rocksr.models.registry import build_models

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    kind, cfg = ckpt["kind"], dict(ckpt["config"])
    # the training data's tile size and contrast normalization (None in older checkpoints)
    cfg.setdefault("tile_size", ckpt.get("tile_size"))
    cfg.setdefault("normalization", ckpt.get("normalization"))
    models = build_models(kind, cfg)
    if kind == "cgan":
        model = models["G"]
        model.load_state_dict(ckpt["models"]["G"])
    else:
        model = models["unet"]
        ema = ckpt.get("ema")
        model.load_state_dict(ema["module"] if ema else ckpt["models"]["unet"])
        cfg["schedule"] = schedule_config(cfg.get("schedule"))
    return kind, model.to(device).eval(), cfg
