"""Every sampler, driven by a perfect predictor of its parameterization, must return x0 exactly.

An oracle that knows x0 knows eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t), and so the exact
target of every parameterization (eps, v, x0).  Any error in the samplers' schedules, timestep
indexing, parameterization conversions or thresholding shows up here.
"""

import pytest
import torch

from rocksr.diffusion.sampling import sample
from rocksr.diffusion.schedule import as_schedule, training_target

# diffusers' DPM-Solver trips a numpy-2 copy-keyword DeprecationWarning inside its own code
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.mark.parametrize("threshold", ["none", "clip", "dynamic"])
@pytest.mark.parametrize("prediction", ["epsilon", "v", "sample"])
@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize(
    ("sampler", "steps"), [("ancestral", None), ("ddim", 10), ("ddim", 50), ("dpmsolver", 20)]
)
def test_oracle_model_recovers_x0(beta_schedule, sampler, steps, prediction, threshold):
    cfg = {"timesteps": 200, "beta_schedule": beta_schedule, "beta_start": 1e-4, "beta_end": 0.02}
    sched = as_schedule(cfg)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 16, 16, generator=g) * 1.8 - 0.9
    mct = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1

    class Oracle(torch.nn.Module):
        def forward(self, x, t):
            assert x.shape[1] == 2 and torch.equal(x[:, 1:], mct)  # condition passed unchanged
            ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1).float()
            eps = (x[:, :1] - ab.sqrt() * x0) / (1 - ab).sqrt()
            return training_target(sched, x0, eps, t, prediction)

    y = sample(
        Oracle(),
        mct,
        cfg,
        sampler,
        steps,
        torch.Generator().manual_seed(1),
        prediction=prediction,
        threshold={"mode": threshold},
    )
    assert (y - x0).abs().max().item() < 1e-3


@pytest.mark.parametrize("threshold", ["none", "clip"])
@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize(
    ("sampler", "steps"), [("ancestral", None), ("ddim", 10), ("dpmsolver", 20)]
)
def test_oracle_residual_model_with_a_prior_recovers_x0(sampler, steps, prediction, threshold):
    """Predict-and-refine: the model sees [x_t, mct, prior] and its clean signal is x0 - prior;
    a perfect residual predictor returns x0 exactly, thresholding included."""
    cfg = {"timesteps": 200, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
    sched = as_schedule(cfg)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 16, 16, generator=g) * 1.8 - 0.9
    mct = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1
    prior = (x0 + 0.3 * torch.rand(2, 1, 16, 16, generator=g) - 0.15).clamp(-1, 1)
    residual = x0 - prior

    class Oracle(torch.nn.Module):
        def forward(self, x, t):
            assert x.shape[1] == 3
            assert torch.equal(x[:, 1:2], mct) and torch.equal(x[:, 2:3], prior)
            ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1).float()
            eps = (x[:, :1] - ab.sqrt() * residual) / (1 - ab).sqrt()
            return training_target(sched, residual, eps, t, prediction)

    y = sample(
        Oracle(),
        mct,
        cfg,
        sampler,
        steps,
        torch.Generator().manual_seed(1),
        prediction=prediction,
        threshold={"mode": threshold},
        prior=prior,
    )
    assert (y - x0).abs().max().item() < 1e-3


def test_residual_training_target_is_exact() -> None:
    """With a prior, the DDPM's clean signal is SEM - prior and its condition [mct, prior]."""
    from rocksr.diffusion.schedule import q_sample

    sched = as_schedule({"timesteps": 50})
    g = torch.Generator().manual_seed(2)
    sem, mct, prior = (torch.rand(3, 1, 8, 8, generator=g) * 2 - 1 for _ in range(3))
    t = torch.tensor([0, 10, 49])
    noise = torch.randn(3, 1, 8, 8, generator=g)
    x = q_sample(sched, sem - prior, torch.cat([mct, prior], 1), t, noise)
    ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1).float()
    want = ab.sqrt() * (sem - prior) + (1 - ab).sqrt() * noise
    assert torch.allclose(x[:, :1], want, atol=1e-6)
    assert torch.equal(x[:, 1:], torch.cat([mct, prior], 1))
    assert torch.equal(training_target(sched, sem - prior, noise, t, "sample"), sem - prior)
