"""Tiled DDPM sampling of a whole slice: :func:`fused_sample` blends the tiles' x0 estimates at
every scheduler step (``fuse="step"``); :func:`resolve_steps` checks a sampler's step count."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rocksr.enhance.blending import blend_window, tile_grid, weight_sum
from rocksr.enhance.errors import EnhanceError


def resolve_steps(sampler: str, steps: int | None, timesteps: int) -> int:
    """Steps that :func:`rocksr.diffusion.sample` would run (ancestral: all T)."""
    from rocksr.diffusion.sampling import DEFAULT_STEPS, SAMPLERS

    if sampler not in SAMPLERS:
        raise EnhanceError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if sampler == "ancestral":
        if steps not in (None, timesteps):
            raise EnhanceError(
                f"the ancestral sampler runs all {timesteps} steps; use ddim or dpmsolver for "
                "fewer steps"
            )
        return timesteps
    n = int(steps or DEFAULT_STEPS[sampler])
    if n < 1:
        raise EnhanceError(f"steps must be >= 1, got {steps}")
    return n


def _conditioning(
    mct: torch.Tensor, prior: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the model's condition: the micro-CT, with the prior as a second channel when there is
    one; the prior or None), both float32, after checking their shapes."""
    if mct.ndim != 4 or mct.shape[:2] != (1, 1):
        raise ValueError(f"mct must be (1, 1, H, W), got {tuple(mct.shape)}")
    mct = mct.float()
    if prior is None:
        return mct, None
    if prior.shape != mct.shape:
        raise ValueError(f"prior {tuple(prior.shape)} must have mct's shape {tuple(mct.shape)}")
    offset = prior.float()
    return torch.cat([mct, offset], dim=1), offset


@torch.no_grad()
def fused_sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    mct: torch.Tensor,
    schedule: Any,
    sampler: str = "ddim",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    *,
    tile: int,
    overlap: int,
    window: str = "gaussian",
    batch_size: int = 8,
    prediction: str,
    threshold: dict | None = None,
    amp: bool | None = None,
    on_batch: Callable[[int], None] | None = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Tiled DDPM sampling fused at every step: mct (1,1,H,W) in [-1,1] -> SEM (1,1,H,W).

    ``prior`` (1,1,H,W): the whole slice's prior of a predict-and-refine DDPM; each tile is
    conditioned on its window of it, the state is the residual, and prior + residual is returned.

    Same scheduler loop as :func:`rocksr.diffusion.sample` on the whole image: x_T is one noise
    field of shape (1,1,H,W) drawn from ``generator``; at every step each tile of x_t (with its
    micro-CT tile) goes through ``model`` in batches of ``batch_size``; each output is turned
    into the thresholded x0 estimate (with thresholding off: the raw output, which is linear in
    the tiles, so blending commutes with the scheduler's own conversion); the tiles are blended
    with ``window`` weights normalized per pixel (``w / sum(w)``) into one full-size estimate;
    and one ``scheduler.step`` (built for prediction ``sample`` when thresholding, as ``sample``
    does) advances the whole image, drawing any step noise for the whole image.  With one tile
    this is ``sample`` exactly; with a pointwise model it equals ``sample`` on the whole image
    up to float rounding (``dynamic`` thresholding excepted: its quantile is taken per tile).
    """
    from rocksr.diffusion.sampling import make_scheduler, step_estimate, threshold_config
    from rocksr.diffusion.schedule import as_schedule, check_prediction

    sched = as_schedule(schedule)
    n = resolve_steps(sampler, steps, sched.timesteps)
    check_prediction(prediction)
    thr = threshold_config(threshold)
    cond, offset = _conditioning(mct, prior)
    device = mct.device
    h, w = mct.shape[-2:]
    ys, xs = tile_grid(h, w, tile, overlap)
    win_np = blend_window(tile, window)
    win = torch.from_numpy(win_np).to(device)
    wsum = torch.from_numpy(weight_sum(ys, xs, win_np, h, w)).to(device)
    positions = [(int(y), int(x)) for y in ys for x in xs]
    sch = make_scheduler(sched, sampler, prediction if thr["mode"] == "none" else "sample")
    sch.set_timesteps(n, device=device)
    gdev = generator.device if generator is not None else device
    x = torch.randn(mct.shape, generator=generator, device=gdev, dtype=torch.float32).to(device)
    for t in sch.timesteps:
        fused = torch.zeros_like(x)
        for start in range(0, len(positions), int(batch_size)):
            pos = positions[start : start + int(batch_size)]
            xt = torch.stack([x[0, :, y : y + tile, c : c + tile] for y, c in pos])
            m = torch.stack([cond[0, :, y : y + tile, c : c + tile] for y, c in pos])
            off = None
            if offset is not None:
                off = torch.stack([offset[0, :, y : y + tile, c : c + tile] for y, c in pos])
            tt = torch.full((len(pos),), int(t), device=device, dtype=torch.long)
            out = step_estimate(model, xt, m, tt, sched, prediction, thr, amp, off)
            for i, (y, c) in enumerate(pos):
                wt = win / wsum[y : y + tile, c : c + tile]
                fused[0, 0, y : y + tile, c : c + tile] += wt * out[i, 0]
            if on_batch is not None:
                on_batch(len(pos))
        x = sch.step(fused, t, x, generator=generator, return_dict=False)[0]
    if offset is not None:
        x = x + offset
    return x.clamp(-1.0, 1.0)
