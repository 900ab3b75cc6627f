"""Loading a checkpoint for inference, its tile predictor, and the seeding of every sampler run.

:func:`seeded_generator` is the one place a ``torch.Generator`` is seeded from a
``numpy.random.SeedSequence``: per batch and per sample in ``predict`` (:func:`batch_generator`,
:func:`sample_generator`) and per sample and slice in ``rocksr enhance``
(:func:`slice_sample_generator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn


def seeded_generator(entropy: Sequence[int], device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded with 64 bits of ``SeedSequence(entropy)``."""
    import torch

    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


def batch_generator(seed: int, batch_index: int, device: Any = "cpu") -> Any:
    """A torch.Generator on ``device`` seeded from ``SeedSequence([seed, batch_index])``."""
    return seeded_generator([seed, batch_index], device)


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
    return seeded_generator([seed, batch_index, k], device)


SAMPLE_SEEDING = (
    "sample k: torch.Generator seeded with seed (k = 0) or 64 bits of "
    "SeedSequence([seed, k]) (k >= 1); independent slice noise: "
    "SeedSequence([seed, k, z])"
)
"""How :func:`slice_sample_generator` seeds sample ``k`` of slice ``z`` (recorded in the provenance)."""


def slice_sample_generator(seed: int, k: int = 0, z: int | None = None) -> Any:
    """The CPU generator of sample ``k`` (of slice ``z`` with independent slice noise):
    seeded with ``seed`` itself for ``k = 0`` and ``z = None`` (so a one-tile image reproduces
    :func:`rocksr.diffusion.sample` with ``torch.Generator().manual_seed(seed)``), else
    :func:`seeded_generator` of ``[seed, k(, z)]``."""
    import torch

    if k == 0 and z is None:
        return torch.Generator(device="cpu").manual_seed(int(seed))
    return seeded_generator([int(seed), int(k)] + ([] if z is None else [int(z)]), "cpu")


def make_predictor(
    kind: str,
    model: Any,
    cfg: dict,
    sampler: str = "ddim",
    steps: int | None = None,
) -> Callable[[Any, Any], Any]:
    """``f(mct (B,1,S,S) in [-1,1], generator) -> (B,1,S,S) in [-1,1]`` for a loaded model
    (``sampler``/``steps`` apply to stochastic kinds)."""
    from rocksr.models.registry import get_kind

    return get_kind(kind).predictor(model, cfg, sampler=sampler, steps=steps)


def load_for_inference(ckpt_path: str | Path, device: str = "cpu") -> tuple[str, nn.Module, dict]:
    """(kind, model in eval mode, config saved in the checkpoint): the network of the kind's
    registry entry (the cGAN's generator; the DDPM's U-Net with EMA weights when present)."""
    from rocksr.checkpoints import load_checkpoint
    from rocksr.models.registry import get_kind

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    kind, cfg = ckpt["kind"], dict(ckpt["config"])
    # the training data's tile size and contrast normalization (None in older checkpoints)
    cfg.setdefault("tile_size", ckpt.get("tile_size"))
    cfg.setdefault("normalization", ckpt.get("normalization"))
    model = get_kind(kind).inference(ckpt, cfg, device, Path(ckpt_path))
    return kind, model, cfg
