"""Conditional diffusion maths (seed §3.2): schedule, forward process, loss and samplers.

Conventions: timesteps are 0-based indices t in {0, ..., T-1} (diffusers' convention; the seed's
t = 1..T is t_index + 1).  Only the SEM channel is ever noised; the micro-CT channel is
concatenated unchanged, so it is bit-identical at every t.  Model input is [x_t^sem, x^mct]
(B,2,H,W); the model returns eps^sem (B,1,H,W).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

SAMPLERS = ("ancestral", "ddim", "dpmsolver")
LOSSES = ("l1", "smooth_l1", "mse")


@dataclass(frozen=True)
class Schedule:
    """Noise schedule in float64 (CPU); cast to the working dtype/device on use."""

    betas: torch.Tensor

    @property
    def timesteps(self) -> int:
        return int(self.betas.numel())

    @cached_property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @cached_property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)


def _cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021) cosine schedule (= diffusers 'squaredcos_cap_v2')."""

    def abar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    b = [min(1 - abar((i + 1) / timesteps) / abar(i / timesteps), max_beta)
         for i in range(timesteps)]
    return torch.tensor(b, dtype=torch.float64)


def make_schedule(timesteps: int, beta_schedule: str = "linear", beta_start: float = 1e-4,
                  beta_end: float = 0.02) -> Schedule:
    """beta_schedule: 'linear' (beta_start -> beta_end, Ho et al.) or 'cosine' (ignores start/end)."""
    timesteps = int(timesteps)
    if timesteps < 1:
        raise ValueError("timesteps must be >= 1")
    if beta_schedule == "linear":
        betas = torch.linspace(float(beta_start), float(beta_end), timesteps, dtype=torch.float64)
    elif beta_schedule == "cosine":
        betas = _cosine_betas(timesteps)
    else:
        raise ValueError(f"unknown beta_schedule {beta_schedule!r} (linear | cosine)")
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError("betas must lie in (0, 1)")
    return Schedule(betas)


def as_schedule(schedule: Schedule | dict) -> Schedule:
    """Accept a Schedule or a config dict {timesteps, beta_schedule, beta_start, beta_end}."""
    if isinstance(schedule, Schedule):
        return schedule
    return make_schedule(
        schedule.get("timesteps", 1000),
        schedule.get("beta_schedule", "linear"),
        schedule.get("beta_start", 1e-4),
        schedule.get("beta_end", 0.02),
    )


def _gather(v: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """v[t] reshaped to broadcast against ``like`` (B,C,H,W), in like's dtype/device."""
    out = v.to(like.device)[t.to(like.device)].to(torch.float32)
    return out.view(-1, *([1] * (like.ndim - 1)))


def q_sample(schedule: Schedule, sem0: torch.Tensor, mct: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """x^(t) = [sqrt(abar_t) x0^sem + sqrt(1-abar_t) eps, x^mct]  (B,2,H,W); mct untouched."""
    abar = _gather(schedule.alphas_cumprod, t, sem0)
    xt = abar.sqrt() * sem0 + (1.0 - abar).sqrt() * noise
    return torch.cat([xt.to(sem0.dtype), mct], dim=1)


def eps_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Loss between predicted and true eps^sem: l1 (seed), smooth_l1, or mse; computed in fp32."""
    pred, target = pred.float(), target.float()
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    if kind == "mse":
        return F.mse_loss(pred, target)
    raise ValueError(f"unknown loss {kind!r} (one of {LOSSES})")


def training_loss(model: Callable, schedule: Schedule, sem0: torch.Tensor, mct: torch.Tensor,
                  generator: torch.Generator | None = None, kind: str = "l1",
                  t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Draw t ~ U{0..T-1} and eps ~ N(0,I) (from ``generator``) unless given; return the eps loss."""
    b = sem0.shape[0]
    gdev = generator.device if generator is not None else sem0.device
    if t is None:
        t = torch.randint(0, schedule.timesteps, (b,), generator=generator, device=gdev)
    if noise is None:
        noise = torch.randn(sem0.shape, generator=generator, device=gdev, dtype=torch.float32)
    t, noise = t.to(sem0.device), noise.to(sem0.device, sem0.dtype)
    x = q_sample(schedule, sem0, mct, t, noise)
    return eps_loss(model(x, t), noise, kind)


def ancestral_step(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int,
                   eta: torch.Tensor | None) -> torch.Tensor:
    """Seed's reverse step for the SEM channel (index t, 0-based):

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


def make_diffusers_scheduler(schedule: Schedule, sampler: str):
    """DDIM (eta=0, trailing spacing) or DPM-Solver++ (2nd order multistep) on the same betas."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    betas = schedule.betas.numpy().astype(np.float64)
    if sampler == "ddim":
        return DDIMScheduler(num_train_timesteps=schedule.timesteps, trained_betas=betas,
                             clip_sample=False, set_alpha_to_one=True,
                             timestep_spacing="trailing", prediction_type="epsilon")
    if sampler == "dpmsolver":
        return DPMSolverMultistepScheduler(num_train_timesteps=schedule.timesteps,
                                           trained_betas=betas, algorithm_type="dpmsolver++",
                                           solver_order=2, prediction_type="epsilon",
                                           timestep_spacing="linspace", lower_order_final=True)
    raise ValueError(f"unknown sampler {sampler!r} (one of {SAMPLERS})")


@torch.no_grad()
def sample(model, mct: torch.Tensor, schedule: Schedule | dict, sampler: str = "ancestral",
           steps: int | None = None, generator: torch.Generator | None = None, *,
           amp: bool | None = None) -> torch.Tensor:
    """mct (B,1,H,W) in [-1,1] -> predicted SEM (B,1,H,W) clamped to [-1,1].

    sampler: 'ancestral' (seed; steps must be None or T), 'ddim', 'dpmsolver' (steps default 50
    and 25).  Deterministic given ``generator`` (all noise is drawn from it, on its device).
    amp: bf16 autocast for the network (None = on when mct is on CUDA).
    """
    sched = as_schedule(schedule)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r} (one of {SAMPLERS})")
    device = mct.device
    mct = mct.float()
    b = mct.shape[0]
    x = _randn(mct.shape, generator, device)

    def eps_of(x_sem: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((b,), int(t), device=device, dtype=torch.long)
        with _amp_ctx(device, amp):
            out = model(torch.cat([x_sem, mct], dim=1), tt)
        return out.float()

    if sampler == "ancestral":
        if steps not in (None, sched.timesteps):
            raise ValueError("the ancestral sampler runs all T steps; use ddim/dpmsolver for fewer")
        for t in range(sched.timesteps - 1, -1, -1):
            eta = _randn(mct.shape, generator, device) if t > 0 else None
            x = ancestral_step(sched, x, eps_of(x, t), t, eta)
    else:
        n = int(steps or (50 if sampler == "ddim" else 25))
        sch = make_diffusers_scheduler(sched, sampler)
        sch.set_timesteps(n, device=device)
        for t in sch.timesteps:
            x = sch.step(eps_of(x, int(t)), t, x, return_dict=False)[0]
    return x.clamp(-1.0, 1.0)
