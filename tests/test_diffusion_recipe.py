"""Parameterizations (eps / v / x0), thresholding, Min-SNR weights, and that the recommended
recipe learns: a DDPM whose samples beat histogram matching on a tiny non-monotone task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers_train import single_thread  # noqa: F401 (autouse fixture)

from rocksr.diffusion.sampling import ancestral_step, sample, sampling_options, threshold_x0
from rocksr.diffusion.schedule import (
    as_schedule,
    loss_weights,
    make_schedule,
    pixel_loss,
    snr,
    training_loss,
    training_target,
    x0_from_output,
)
from rocksr.evaluation import metrics as M
from rocksr.evaluation.baselines import histogram_matching_lut

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _known():
    s = make_schedule(1000, "linear", 1e-4, 0.02)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    return s, x0, eps, t


def test_training_targets_are_exact():
    s, x0, eps, t = _known()
    ab = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[t]
    ab = ab.view(-1, 1, 1, 1)
    assert torch.equal(training_target(s, x0, eps, t, "epsilon"), eps)
    assert torch.equal(training_target(s, x0, eps, t, "sample"), x0)
    v_ref = ab.sqrt() * eps.double() - (1 - ab).sqrt() * x0.double()
    torch.testing.assert_close(
        training_target(s, x0, eps, t, "v").double(), v_ref, atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match="prediction"):
        training_target(s, x0, eps, t, "score")


@pytest.mark.parametrize("prediction", ["epsilon", "v", "sample"])
def test_x0_from_output_inverts_the_target(prediction):
    s, x0, eps, t = _known()
    ab = s.alphas_cumprod[t].view(-1, 1, 1, 1).float()
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    out = training_target(s, x0, eps, t, prediction)
    # eps at t = 0 divides by sqrt(abar_0) ~ 1: exact enough; v and x0 are well conditioned
    torch.testing.assert_close(x0_from_output(s, xt, out, t, prediction), x0, atol=2e-4, rtol=0)


def test_threshold_clip_and_dynamic():
    x0 = torch.tensor([[-3.0, -0.5, 0.2, 2.0]]).view(1, 1, 2, 2)
    assert torch.equal(threshold_x0(x0, "clip", 1.0), x0.clamp(-1, 1))
    assert torch.equal(threshold_x0(x0, "clip", 0.5), x0.clamp(-0.5, 0.5))
    assert torch.equal(threshold_x0(x0, "none"), x0)
    # dynamic: s = quantile(|x0|, ratio) >= range; clamp to [-s, s] and rescale to the range
    s = torch.quantile(x0.abs().flatten(), 0.9).item()
    dyn = threshold_x0(x0, "dynamic", 1.0, 0.9)
    torch.testing.assert_close(dyn, x0.clamp(-s, s) / s)
    assert dyn.abs().max() <= 1.0
    inside = torch.tensor([[-0.9, 0.1, 0.3, 0.8]]).view(1, 1, 2, 2)
    assert torch.equal(threshold_x0(inside, "dynamic", 1.0, 0.995), inside)  # s clamps to 1
    with pytest.raises(ValueError, match="threshold"):
        threshold_x0(x0, "soft")


def test_sampler_thresholds_out_of_range_x0():
    """A model whose x0 estimate is 3 everywhere: with clip range 0.5 every sampler returns
    0.5; without thresholding the output only meets the final clamp to [-1, 1]."""
    sched = as_schedule({"timesteps": 50})
    mct = torch.zeros(1, 1, 4, 4)

    def model(x, t):
        return torch.full_like(x[:, :1], 3.0)

    for sampler, steps in (("ancestral", None), ("ddim", 5), ("dpmsolver", 5)):
        g = torch.Generator().manual_seed(0)
        y = sample(
            model,
            mct,
            sched,
            sampler,
            steps,
            g,
            prediction="sample",
            threshold={"mode": "clip", "range": 0.5},
        )
        torch.testing.assert_close(y, torch.full_like(y, 0.5), atol=1e-5, rtol=0)
        y = sample(
            model,
            mct,
            sched,
            sampler,
            steps,
            torch.Generator().manual_seed(0),
            prediction="sample",
            threshold={"mode": "none"},
        )
        assert torch.equal(y, torch.ones_like(y))


def test_ancestral_eps_without_threshold_is_the_seed_formula():
    """The scheduler-driven ancestral sampler (diffusers DDPMScheduler, sigma^2 = beta) equals the
    seed's mu_theta + sqrt(beta_t) eta loop, step for step, with the same noise draws."""
    sched = make_schedule(60, "linear", 1e-4, 0.1)
    mct = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(9)) * 2 - 1

    def model(x, t):  # any deterministic eps-model will do
        return 0.3 * x[:, :1] + 0.2 * x[:, 1:] * (t.view(-1, 1, 1, 1).float() / 60)

    ours = sample(
        model,
        mct,
        sched,
        "ancestral",
        None,
        torch.Generator().manual_seed(1),
        prediction="epsilon",
        threshold={"mode": "none"},
    )
    g = torch.Generator().manual_seed(1)
    x = torch.randn(mct.shape, generator=g)
    for t in range(59, -1, -1):
        eps = model(torch.cat([x, mct], 1), torch.full((2,), t))
        eta = torch.randn(mct.shape, generator=g) if t > 0 else None
        x = ancestral_step(sched, x, eps, t, eta)
    torch.testing.assert_close(ours, x.clamp(-1, 1), atol=1e-4, rtol=0)


def test_min_snr_weights():
    s, x0, eps, t = _known()
    r = snr(s, t)
    ab = s.alphas_cumprod[t].float()
    torch.testing.assert_close(r, ab / (1 - ab))
    w_x0 = loss_weights(s, t, "sample", 5.0)
    torch.testing.assert_close(w_x0, torch.clamp(r, max=5.0))
    torch.testing.assert_close(loss_weights(s, t, "epsilon", 5.0), torch.clamp(r, max=5.0) / r)
    torch.testing.assert_close(loss_weights(s, t, "v", 5.0), torch.clamp(r, max=5.0) / (r + 1))
    assert loss_weights(s, t, "epsilon", None) is None
    pred, target = (
        torch.zeros(4, 1, 2, 2),
        torch.ones(4, 1, 2, 2) * torch.arange(4).view(4, 1, 1, 1),
    )
    w = torch.tensor([1.0, 0.5, 0.0, 2.0])
    assert pixel_loss(pred, target, "l1", w).item() == pytest.approx((0 + 0.5 + 0 + 6) / 4)
    # the loss uses the parameterization's target
    seen = {}

    def model(x, tt):
        seen["x"] = x
        return torch.zeros_like(x[:, :1])

    loss = training_loss(model, s, x0, x0, t=t, noise=eps, prediction="sample")
    assert loss.item() == pytest.approx(x0.abs().mean().item(), rel=1e-6)


def test_sampling_options_default_to_eps_for_old_checkpoints():
    assert sampling_options({})["prediction"] == "epsilon"
    assert sampling_options({"prediction": "v"})["prediction"] == "v"
    assert sampling_options({})["threshold"]["mode"] == "clip"
    with pytest.raises(ValueError, match="prediction"):
        sampling_options({"prediction": "x0"})


# --------------------------------------------------------------------------- learning
def _nonmonotone_tiles(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """micro-CT = smooth field; SEM = a non-monotone function of it (bright at mid grey, dark at
    both ends), so no global grey-level map (histogram matching) can get it right."""
    rng = np.random.default_rng(seed)
    k = 4
    coarse = rng.random((n, k, k))
    up = torch.nn.functional.interpolate(
        torch.from_numpy(coarse)[:, None], size=(size, size), mode="bicubic", align_corners=False
    )[:, 0].numpy()
    base = np.clip(up, 0, 1)
    sem = 0.1 + 0.8 * np.exp(-((base - 0.5) ** 2) / 0.02)
    return (base * 255).round().astype(np.uint8), (sem * 255).round().astype(np.uint8)


def test_recommended_recipe_beats_histogram_matching_quickly():
    """x0-prediction, clip thresholding, lr 2e-3, EMA: DDIM-10 samples of held-out tiles reach
    25 dB within 300 steps (about 8 s on one CPU thread), far above the train-fitted
    histogram-matching baseline (about 7 dB on this non-monotone task).  Measured when written:
    x0 29.6 dB; the seed's eps-prediction with the same budget 14.7 dB."""
    from rocksr.training.ddpm_task import DDPMTask
    from rocksr.training.runtime import Runtime

    size = 16
    mct_tr, sem_tr = _nonmonotone_tiles(64, size, 0)
    mct_te, sem_te = _nonmonotone_tiles(16, size, 1)
    lut = histogram_matching_lut(
        np.bincount(mct_tr.ravel(), minlength=256), np.bincount(sem_tr.ravel(), minlength=256)
    )
    truth = M.to_unit(sem_te)
    psnr_hist = float(np.mean(M.psnr(M.to_unit(lut[mct_te]), truth)))

    def to_t(a):
        return torch.from_numpy(a.astype(np.float32) / 127.5 - 1)[:, None]

    torch.manual_seed(0)
    cfg = {
        "prediction": "sample",
        "lr": 2e-3,
        "weight_decay": 0.0,
        "grad_clip": 1.0,
        "schedule": {"timesteps": 100},
        "ema": {"enabled": True, "decay": 0.98},
        "plateau": {"enabled": False},
        "val_sampler": "ddim",
        "val_sampler_steps": 10,
        "unet": {
            "block_out_channels": [16, 32],
            "layers_per_block": 1,
            "attention_levels": [False, False],
            "norm_num_groups": 8,
            "mid_attention": False,
        },
    }
    task = DDPMTask(cfg, Runtime({}, torch.device("cpu")), seed=0)
    g = torch.Generator().manual_seed(0)
    x_tr, y_tr = to_t(mct_tr), to_t(sem_tr)
    for _ in range(300):
        idx = torch.randint(0, len(x_tr), (16,), generator=g)
        task.train_step(x_tr[idx], y_tr[idx], g)
    pred = task.predict(to_t(mct_te))
    u8 = np.clip(np.rint((pred[:, 0].numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    psnr_ddpm = float(np.mean(M.psnr(M.to_unit(u8), truth)))
    assert math.isfinite(psnr_hist)
    assert psnr_ddpm >= max(25.0, psnr_hist + 3.0), (psnr_ddpm, psnr_hist)
