"""Sampling a conditional DDPM: the ancestral, DDIM and DPM-Solver samplers on diffusers'
schedulers, x0 thresholding, and one denoising loop (:func:`sample`) shared by validation,
``predict``, the sampler study and ``enhance``."""

from __future__ import annotations

import math

import numpy as np
import torch

from rocksr.config.choices import SAMPLERS
from rocksr.config.ddpm import Threshold
from rocksr.config.merge import merge_known, section_defaults
from rocksr.diffusion.schedule import (
    DIFFUSERS_PREDICTION,
    Schedule,
    as_schedule,
    check_prediction,
    x0_from_output,
)

THRESHOLDS = ("none", "clip", "dynamic")


# x0 thresholding while sampling; the data range is [-1, 1]
THRESHOLD_DEFAULTS: dict = section_defaults(Threshold)


DEFAULT_STEPS = {"ddim": 50, "dpmsolver": 25}


def threshold_config(cfg: dict | None) -> dict:
    """``ddpm.threshold`` with defaults filled and checked: {mode, range, ratio}."""
    c = merge_known(THRESHOLD_DEFAULTS, cfg, "ddpm.threshold")
    if c["mode"] not in THRESHOLDS:
        raise ValueError(f"unknown threshold mode {c['mode']!r} (one of {THRESHOLDS})")
    c["range"], c["ratio"] = float(c["range"]), float(c["ratio"])
    if c["range"] <= 0 or not 0 < c["ratio"] <= 1:
        raise ValueError(f"threshold range must be > 0 and ratio in (0, 1], got {c}")
    return c


def sampling_options(cfg: dict | None) -> dict:
    """``{prediction, threshold}`` for :func:`sample` from a ``ddpm`` config section or a
    checkpoint's saved config.  Checkpoints written before ``prediction`` existed were all
    eps-prediction models, so a missing key means ``epsilon`` (not the training default)."""
    cfg = cfg or {}
    return {
        "prediction": check_prediction(str(cfg.get("prediction", "epsilon"))),
        "threshold": threshold_config(cfg.get("threshold")),
    }


def threshold_x0(
    x0: torch.Tensor, mode: str = "clip", clip_range: float = 1.0, ratio: float = 0.995
) -> torch.Tensor:
    """Clip (``clip``) or dynamically threshold (``dynamic``, Imagen) an x0 estimate (B,C,H,W)."""
    if mode == "none":
        return x0
    if mode == "clip":
        return x0.clamp(-clip_range, clip_range)
    if mode == "dynamic":
        flat = x0.float().reshape(x0.shape[0], -1).abs()
        s = torch.quantile(flat, ratio, dim=1).clamp(min=clip_range)
        s = s.view(-1, *([1] * (x0.ndim - 1)))
        return (torch.maximum(torch.minimum(x0, s), -s) * (clip_range / s)).to(x0.dtype)
    raise ValueError(f"unknown threshold mode {mode!r} (one of {THRESHOLDS})")


def ancestral_step(
    schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, eta: torch.Tensor | None
) -> torch.Tensor:
    """The seed's reverse step for the SEM channel (index t, 0-based), kept as the reference the
    scheduler-driven ancestral sampler is tested against:

    mu = 1/sqrt(alpha_t) * (x_t - (1-alpha_t)/sqrt(1-abar_t) * eps);  x_{t-1} = mu + sqrt(beta_t) eta.
    At t = 0 (the seed's t = 1) no noise is added (Ho et al. Algorithm 2: z = 0 at the last step).
    """
    a = float(schedule.alphas[t])
    ab = float(schedule.alphas_cumprod[t])
    beta = float(schedule.betas[t])
    mu = (x_t - (1.0 - a) / math.sqrt(1.0 - ab) * eps) / math.sqrt(a)
    if t > 0 and eta is not None:
        mu = mu + math.sqrt(beta) * eta
    return mu


def _amp_ctx(device: torch.device, amp: bool | None):
    use = device.type == "cuda" if amp is None else bool(amp) and device.type == "cuda"
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use)


def _randn(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gdev, dtype=torch.float32).to(device)


def make_scheduler(schedule: Schedule, sampler: str, prediction: str):
    """A diffusers scheduler on the same betas: ``ancestral`` = DDPMScheduler with the seed's
    sigma_t^2 = beta_t ("fixed_large"), ``ddim`` (eta 0, trailing spacing) or ``dpmsolver``
    (DPM-Solver++ 2M).  None of them clips: thresholding is done by :func:`sample`."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    ptype = DIFFUSERS_PREDICTION[check_prediction(prediction)]
    betas = schedule.betas.numpy().astype(np.float64)
    common = {
        "num_train_timesteps": schedule.timesteps,
        "trained_betas": betas,
        "prediction_type": ptype,
    }
    if sampler == "ancestral":
        return DDPMScheduler(**common, variance_type="fixed_large", clip_sample=False)
    if sampler == "ddim":
        return DDIMScheduler(
            **common, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"
        )
    if sampler == "dpmsolver":
        return DPMSolverMultistepScheduler(
            **common,
            algorithm_type="dpmsolver++",
            solver_order=2,
            timestep_spacing="linspace",
            lower_order_final=True,
        )
    raise ValueError(f"unknown sampler {sampler!r} (one of {SAMPLERS})")


def step_estimate(
    model,
    x: torch.Tensor,
    mct: torch.Tensor,
    tt: torch.Tensor,
    sched: Schedule,
    prediction: str,
    thr: dict,
    amp: bool | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the scheduler is stepped with at x_t: the network's output (in float32), or, with
    thresholding, its thresholded x0 estimate (the scheduler is then built for ``sample``).
    ``mct``: the condition (the micro-CT, and the prior as a second channel when there is one);
    ``offset``: the prior that the clean signal is a residual of (thresholding then applies to
    ``offset + x0``, the SEM estimate)."""
    with _amp_ctx(x.device, amp):
        out = model(torch.cat([x, mct], dim=1), tt)
    out = out.float()
    if thr["mode"] != "none":
        x0 = x0_from_output(sched, x, out, tt, prediction)
        if offset is None:
            out = threshold_x0(x0, thr["mode"], thr["range"], thr["ratio"])
        else:
            out = threshold_x0(x0 + offset, thr["mode"], thr["range"], thr["ratio"]) - offset
    return out


@torch.no_grad()
def sample(
    model,
    mct: torch.Tensor,
    schedule: Schedule | dict,
    sampler: str = "ddim",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    *,
    prediction: str,
    threshold: dict | None = None,
    amp: bool | None = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """mct (B,1,H,W) in [-1,1] -> predicted SEM (B,1,H,W) clamped to [-1,1].

    ``prior`` (B,1,H,W) (predict-and-refine, :mod:`rocksr.priors`): the model is conditioned on
    [x_t, mct, prior], generates the residual SEM - prior, and the result is prior + residual.

    sampler: 'ancestral' (seed; steps must be None or T), 'ddim', 'dpmsolver' (steps default
    ``DEFAULT_STEPS``).  ``prediction``: what the model outputs (``PREDICTIONS``).  ``threshold``:
    x0 thresholding at every step ({mode: none | clip | dynamic, range, ratio};
    ``THRESHOLD_DEFAULTS`` when None).  Deterministic given ``generator`` (all noise is drawn
    from it, on its device).  amp: bf16 autocast for the network (None = on when mct is on CUDA).
    """
    sched = as_schedule(schedule)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (one of {SAMPLERS})")
    check_prediction(prediction)
    thr = threshold_config(threshold)
    device = mct.device
    mct = mct.float()
    b = mct.shape[0]
    shape = mct.shape
    offset = None
    if prior is not None:
        offset = prior.float()
        mct = torch.cat([mct, offset], dim=1)
    if sampler == "ancestral":
        if steps not in (None, sched.timesteps):
            raise ValueError("the ancestral sampler runs all T steps; use ddim/dpmsolver for fewer")
        n = sched.timesteps
    else:
        n = int(steps or DEFAULT_STEPS[sampler])
    # with thresholding, the scheduler is handed the (thresholded) x0 estimate of every step
    sch = make_scheduler(sched, sampler, prediction if thr["mode"] == "none" else "sample")
    sch.set_timesteps(n, device=device)
    x = _randn(shape, generator, device)
    for t in sch.timesteps:
        tt = torch.full((b,), int(t), device=device, dtype=torch.long)
        out = step_estimate(model, x, mct, tt, sched, prediction, thr, amp, offset)
        x = sch.step(out, t, x, generator=generator, return_dict=False)[0]
    if offset is not None:
        x = x + offset
    return x.clamp(-1.0, 1.0)
