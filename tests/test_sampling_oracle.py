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
