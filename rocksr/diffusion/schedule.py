"""Conditional diffusion maths (seed §3.2): schedule, forward process, losses and samplers.

Conventions: timesteps are 0-based indices t in {0, ..., T-1} (diffusers' convention; the seed's
t = 1..T is t_index + 1).  Only the SEM channel is ever noised; the micro-CT channel is
concatenated unchanged, so it is bit-identical at every t.  Model input is [x_t^sem, x^mct]
(B,2,H,W); the model returns (B,1,H,W) in one of three parameterizations (diffusers' names in
brackets):

* ``epsilon`` (``epsilon``): the noise eps, as in the seed and Ho et al. (2020);
* ``v`` (``v_prediction``): v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 (Salimans & Ho, 2022);
* ``sample`` (``sample``): the clean SEM x0 itself.

Every sampler (ancestral = diffusers' ``DDPMScheduler`` with sigma_t^2 = beta_t, the seed's
formula; ``ddim``; ``dpmsolver`` = DPM-Solver++ 2M) runs through one ``scheduler.step`` loop.
With thresholding on, the x0 estimate of every step is computed from the model output, clipped
(``clip``: to [-range, range]) or dynamically thresholded (``dynamic``, Imagen: s = the
``ratio``-quantile of |x0| per image, s >= range, x0 <- clamp(x0, -s, s) * range / s), and handed
to the scheduler as an x0 prediction, so the same thresholding applies to every sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F


def schedule_config(cfg: dict | None) -> dict:
    """``ddpm.schedule`` with defaults filled (T=1000, linear 1e-4 -> 0.02)."""
    from rocksr.config.ddpm import Schedule
    from rocksr.config.merge import resolve

    c = resolve(Schedule, cfg, "ddpm.schedule")
    c["timesteps"] = int(c["timesteps"])
    c["beta_start"], c["beta_end"] = float(c["beta_start"]), float(c["beta_end"])
    as_schedule(c)  # validates
    return c


LOSSES = ("l1", "smooth_l1", "mse")


PREDICTIONS = ("epsilon", "v", "sample")


# rocksr's prediction names -> diffusers' prediction_type
DIFFUSERS_PREDICTION = {"epsilon": "epsilon", "v": "v_prediction", "sample": "sample"}


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

    b = [
        min(1 - abar((i + 1) / timesteps) / abar(i / timesteps), max_beta) for i in range(timesteps)
    ]
    return torch.tensor(b, dtype=torch.float64)


def make_schedule(
    timesteps: int, beta_schedule: str = "linear", beta_start: float = 1e-4, beta_end: float = 0.02
) -> Schedule:
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
    """v[t] reshaped to broadcast against ``like`` (B,C,H,W), in float32 on like's device."""
    out = v.to(like.device)[t.to(like.device)].to(torch.float32)
    return out.view(-1, *([1] * (like.ndim - 1)))


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r} (one of {PREDICTIONS})")
    return prediction


def q_sample(
    schedule: Schedule, sem0: torch.Tensor, mct: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """x^(t) = [sqrt(abar_t) x0^sem + sqrt(1-abar_t) eps, x^mct]  (B,2,H,W); mct untouched."""
    abar = _gather(schedule.alphas_cumprod, t, sem0)
    xt = abar.sqrt() * sem0 + (1.0 - abar).sqrt() * noise
    return torch.cat([xt.to(sem0.dtype), mct], dim=1)


def training_target(
    schedule: Schedule,
    sem0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    prediction: str,
) -> torch.Tensor:
    """What the network must output for (x0, eps, t): eps, v or x0."""
    check_prediction(prediction)
    if prediction == "epsilon":
        return noise
    if prediction == "sample":
        return sem0
    abar = _gather(schedule.alphas_cumprod, t, sem0)
    return abar.sqrt() * noise - (1.0 - abar).sqrt() * sem0


def x0_from_output(
    schedule: Schedule,
    x_t: torch.Tensor,
    out: torch.Tensor,
    t: torch.Tensor,
    prediction: str,
) -> torch.Tensor:
    """The x0 estimate implied by a model output ``out`` at (x_t^sem, t)."""
    check_prediction(prediction)
    if prediction == "sample":
        return out
    abar = _gather(schedule.alphas_cumprod, t, x_t)
    if prediction == "epsilon":
        return (x_t - (1.0 - abar).sqrt() * out) / abar.sqrt()
    return abar.sqrt() * x_t - (1.0 - abar).sqrt() * out


def snr(schedule: Schedule, t: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio abar_t / (1 - abar_t), float32 (B,)."""
    abar = schedule.alphas_cumprod[t.cpu()].to(torch.float32)
    return (abar / (1.0 - abar)).to(t.device)


def loss_weights(
    schedule: Schedule,
    t: torch.Tensor,
    prediction: str,
    min_snr_gamma: float | None = None,
) -> torch.Tensor | None:
    """Min-SNR-gamma weights (Hang et al., 2023) per sample, or None for the plain mean.

    The weight is min(SNR, gamma) on the x0 error, i.e. min(SNR, gamma) / SNR for an eps target
    and min(SNR, gamma) / (SNR + 1) for a v target.
    """
    if min_snr_gamma is None:
        return None
    s = snr(schedule, t)
    w = torch.clamp(s, max=float(min_snr_gamma))
    if prediction == "epsilon":
        return w / s
    if prediction == "v":
        return w / (s + 1.0)
    return w


def pixel_loss(
    pred: torch.Tensor, target: torch.Tensor, kind: str = "l1", weights: torch.Tensor | None = None
) -> torch.Tensor:
    """l1 (seed), smooth_l1 or mse between prediction and target, in fp32; with ``weights`` (B,)
    the per-image losses are weighted and averaged."""
    pred, target = pred.float(), target.float()
    if kind == "l1":
        err = (pred - target).abs()
    elif kind == "smooth_l1":
        err = F.smooth_l1_loss(pred, target, reduction="none")
    elif kind == "mse":
        err = (pred - target).square()
    else:
        raise ValueError(f"unknown loss {kind!r} (one of {LOSSES})")
    if weights is None:
        return err.mean()
    per_image = err.reshape(err.shape[0], -1).mean(dim=1)
    return (per_image * weights.to(per_image.device, torch.float32)).mean()


def training_loss(
    model: Callable,
    schedule: Schedule,
    sem0: torch.Tensor,
    mct: torch.Tensor,
    generator: torch.Generator | None = None,
    kind: str = "l1",
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    *,
    prediction: str,
    min_snr_gamma: float | None = None,
) -> torch.Tensor:
    """Draw t ~ U{0..T-1} and eps ~ N(0,I) (from ``generator``) unless given; return the loss of
    the model output against the ``prediction`` target (optionally Min-SNR weighted)."""
    b = sem0.shape[0]
    gdev = generator.device if generator is not None else sem0.device
    if t is None:
        t = torch.randint(0, schedule.timesteps, (b,), generator=generator, device=gdev)
    if noise is None:
        noise = torch.randn(sem0.shape, generator=generator, device=gdev, dtype=torch.float32)
    t, noise = t.to(sem0.device), noise.to(sem0.device, sem0.dtype)
    x = q_sample(schedule, sem0, mct, t, noise)
    target = training_target(schedule, sem0, noise, t, prediction)
    return pixel_loss(
        model(x, t), target, kind, loss_weights(schedule, t, prediction, min_snr_gamma)
    )
