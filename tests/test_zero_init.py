"""``unet.zero_init``: Ho et al.'s initialisation of the U-Net (every block the identity, output 0)."""

from __future__ import annotations

import torch

from rocksr.diffusion.sampling import sample
from rocksr.diffusion.schedule import make_schedule
from rocksr.models.regress import RegressionUNet, regress_arch_signature
from rocksr.models.unet import ConditionalUNet, ddpm_arch_signature

TINY = {
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "attention_levels": [False, True],
    "norm_num_groups": 4,
}


def _unet(zero: bool, channels: int = 3) -> ConditionalUNet:
    torch.manual_seed(0)
    return ConditionalUNet({**TINY, "zero_init": zero}, in_channels=channels).eval()


def test_zero_init_outputs_zero_and_the_default_does_not() -> None:
    x = torch.randn(2, 3, 32, 32)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        assert torch.count_nonzero(_unet(True)(x, t)) == 0
        assert _unet(False)(x, t).abs().max() > 1e-3


def test_zero_init_leaves_the_other_weights_as_diffusers_draws_them() -> None:
    """Only the output convolution, the residual blocks' last convolutions and the attention
    output projections are zeroed; everything else is the default draw of the same seed."""
    zero, default = _unet(True).state_dict(), _unet(False).state_dict()
    zeroed = [k for k in zero if not torch.equal(zero[k], default[k])]
    assert zeroed, "zero_init changed nothing"
    for key in zeroed:
        assert torch.count_nonzero(zero[key]) == 0, key
        assert key.startswith("unet.conv_out.") or ".conv2." in key or ".to_out.0." in key, key
    assert {"unet.conv_out.weight", "unet.conv_out.bias"} <= set(zeroed)


def test_a_zero_init_ddpm_with_a_prior_samples_its_prior() -> None:
    """The residual over the prior is 0 at every step: the sample is the prior itself."""
    mct = torch.rand(2, 1, 32, 32) * 2 - 1
    prior = (torch.rand(2, 1, 32, 32) * 1.6 - 0.8).clamp(-1, 1)
    schedule = make_schedule(100)
    g = torch.Generator().manual_seed(0)
    out = sample(_unet(True), mct, schedule, "ddim", 5, g, prediction="sample", prior=prior)
    assert torch.allclose(out, prior, atol=1e-6)


def test_zero_init_trains_away_from_zero() -> None:
    """Gradients reach the network from the output inwards: one step moves the output off 0
    and a few steps move the residual blocks' zeroed convolutions too."""
    torch.manual_seed(0)
    net = RegressionUNet({**TINY, "zero_init": True})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    mct, sem = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.l1_loss(net(mct), sem).backward()
        opt.step()
    with torch.no_grad():
        assert net(mct).abs().max() > 1e-3
    conv2 = [m.conv2.weight for m in net.modules() if hasattr(m, "conv2")]
    assert conv2 and all(torch.count_nonzero(w) > 0 for w in conv2)


def test_zero_init_is_not_part_of_the_architecture() -> None:
    """An initialisation: a checkpoint's weights replace it, so runs from before the option (and
    runs that change it) have the same architecture signature; the training fingerprint still
    sees it, as every key of the section."""
    for zero in (True, False):
        ddpm = ddpm_arch_signature({"unet": {**TINY, "zero_init": zero}, "prediction": "sample"})
        assert "zero_init" not in ddpm["unet"]
        assert "zero_init" not in regress_arch_signature({"unet": {**TINY, "zero_init": zero}})
    assert ddpm_arch_signature({"unet": TINY, "prediction": "sample"}) == ddpm_arch_signature(
        {"unet": {**TINY, "zero_init": True}, "prediction": "sample"}
    )
