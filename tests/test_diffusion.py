"""Forward process, loss and samplers of the conditional DDPM (rocksr.diffusion)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from helpers_train import single_thread  # noqa: F401 (autouse fixture)

from rocksr.diffusion.sampling import ancestral_step, sample
from rocksr.diffusion.schedule import (
    as_schedule,
    make_schedule,
    pixel_loss,
    q_sample,
    training_loss,
)

# diffusers' DPM-Solver trips a numpy-2 copy-keyword DeprecationWarning inside its own code
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_linear_schedule_endpoints():
    s = make_schedule(1000, "linear", 1e-4, 0.02)
    assert s.timesteps == 1000 and s.betas.dtype == torch.float64
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - s.betas, 0))


def test_cosine_schedule_matches_diffusers():
    s = make_schedule(1000, "cosine")
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").betas
    assert torch.allclose(s.betas.float(), ref, atol=1e-6)
    assert bool((s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all())


def test_bad_schedule_rejected():
    with pytest.raises(ValueError):
        make_schedule(10, "quadratic")
    with pytest.raises(ValueError):
        make_schedule(10, "linear", 0.0, 0.5)


def test_q_sample_leaves_mct_bit_identical_for_every_t():
    s = make_schedule(1000, "linear", 1e-4, 0.02)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(1000)
    mct = torch.rand(1000, 1, 8, 8, generator=g) * 2 - 1
    sem = torch.rand(1000, 1, 8, 8, generator=g) * 2 - 1
    x = q_sample(s, sem, mct, t, torch.randn(sem.shape, generator=g))
    assert x.shape == (1000, 2, 8, 8)
    assert torch.equal(x[:, 1:], mct)  # bit-identical, not just close
    assert not torch.equal(x[:, :1], sem)


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("t", [0, 10, 250, 999])
def test_q_sample_marginal_moments(beta_schedule, t):
    """x_t^sem | x0 ~ N(sqrt(abar_t) x0, (1-abar_t) I).  With n = 2**18 draws the standard error of
    the sample variance is var*sqrt(2/n) ~ 0.28 % of var, of the mean sqrt(var/n); we allow 2 %
    relative on the variance (~7 sigma) and 6 standard errors on the mean."""
    s = make_schedule(1000, beta_schedule, 1e-4, 0.02)
    n = 2**18
    g = torch.Generator().manual_seed(1234 + t)
    x0 = torch.full((1, 1, 512, 512), 0.3)
    mct = torch.zeros_like(x0)
    xt = q_sample(s, x0, mct, torch.tensor([t]), torch.randn(x0.shape, generator=g))[:, 0]
    abar = s.alphas_cumprod[t].item()
    var = 1 - abar
    assert xt.numel() == n
    assert xt.double().var().item() == pytest.approx(var, rel=0.02)
    assert abs(xt.double().mean().item() - math.sqrt(abar) * 0.3) < 6 * math.sqrt(var / n)


def test_ancestral_step_matches_float64_reference_and_diffusers():
    s = make_schedule(1000, "linear", 1e-4, 0.02)
    ref = DDPMScheduler(
        num_train_timesteps=1000,
        trained_betas=s.betas.numpy(),
        variance_type="fixed_large",
        clip_sample=False,
    )
    g = torch.Generator().manual_seed(0)
    for t in [999, 500, 37, 1, 0]:
        x = torch.randn(2, 1, 16, 16, generator=g)
        eps = torch.randn(2, 1, 16, 16, generator=g)
        eta = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(t))
        ours = ancestral_step(s, x, eps, t, eta)
        # independent float64 re-computation of the seed's formula
        b = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
        a, ab = 1 - b[t], np.prod(1 - b[: t + 1])
        x64, e64, n64 = x.double().numpy(), eps.double().numpy(), eta.double().numpy()
        mu = (x64 - (1 - a) / np.sqrt(1 - ab) * e64) / np.sqrt(a)
        exp = mu + (np.sqrt(b[t]) * n64 if t > 0 else 0.0)
        np.testing.assert_allclose(ours.numpy(), exp, rtol=0, atol=1e-5)
        # diffusers posterior-mean form + sqrt(beta_t) noise (fixed_large), same eta via generator
        theirs = ref.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=2e-4)


def test_losses():
    a, b = torch.zeros(4), torch.tensor([0.5, -0.5, 2.0, 0.0])
    assert pixel_loss(a, b, "l1").item() == pytest.approx(0.75)
    assert pixel_loss(a, b, "mse").item() == pytest.approx((0.25 + 0.25 + 4) / 4)
    assert pixel_loss(a, b, "smooth_l1").item() == pytest.approx((0.125 + 0.125 + 1.5) / 4)
    with pytest.raises(ValueError):
        pixel_loss(a, b, "huber2")


def test_training_loss_noises_only_sem_and_is_seeded():
    s = make_schedule(100, "linear", 1e-4, 0.02)
    seen = []

    def model(x, t):
        seen.append(x.clone())
        return torch.zeros_like(x[:, :1])

    mct, sem = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    l1 = training_loss(model, s, sem, mct, torch.Generator().manual_seed(5), prediction="epsilon")
    l2 = training_loss(model, s, sem, mct, torch.Generator().manual_seed(5), prediction="epsilon")
    assert l1.item() == l2.item() and torch.equal(seen[0], seen[1])
    assert torch.equal(seen[0][:, 1:], mct)


def _oracle(schedule, c: float):
    """Exact eps predictor when the data distribution is the point mass x0 = c."""
    abar = schedule.alphas_cumprod.float()

    def model(x, t):
        ab = abar[t].view(-1, 1, 1, 1)
        return (x[:, :1] - ab.sqrt() * c) / (1 - ab).sqrt()

    return model


@pytest.mark.parametrize("sampler,steps", [("ancestral", None), ("ddim", 20), ("dpmsolver", 10)])
@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
def test_samplers_recover_point_mass(sampler, steps, beta_schedule):
    """With the exact eps of a point-mass data distribution every sampler must land on it: this
    pins the timestep indexing and the coefficient conventions of all three samplers."""
    sched = make_schedule(200, beta_schedule, 1e-4, 0.05)
    mct = torch.zeros(2, 1, 8, 8)
    out = sample(
        _oracle(sched, 0.4),
        mct,
        sched,
        sampler,
        steps,
        torch.Generator().manual_seed(0),
        prediction="epsilon",
    )
    assert out.shape == mct.shape
    assert torch.allclose(out, torch.full_like(out, 0.4), atol=2e-3)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim", "dpmsolver"])
def test_sample_deterministic_given_generator(sampler):
    cfg = {"timesteps": 30, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.2}

    def model(x, t):
        return 0.5 * x[:, :1] + 0.1 * x[:, 1:]

    mct = torch.rand(2, 1, 8, 8) * 2 - 1
    steps = None if sampler == "ancestral" else 5
    a = sample(
        model, mct, cfg, sampler, steps, torch.Generator().manual_seed(3), prediction="epsilon"
    )
    b = sample(
        model, mct, cfg, sampler, steps, torch.Generator().manual_seed(3), prediction="epsilon"
    )
    c = sample(
        model, mct, cfg, sampler, steps, torch.Generator().manual_seed(4), prediction="epsilon"
    )
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


def test_sample_rejects_bad_arguments():
    sched = as_schedule({"timesteps": 10})
    mct = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="ancestral"):
        sample(lambda x, t: x[:, :1], mct, sched, "ancestral", steps=5, prediction="epsilon")
    with pytest.raises(ValueError, match="sampler"):
        sample(lambda x, t: x[:, :1], mct, sched, "euler", prediction="epsilon")
