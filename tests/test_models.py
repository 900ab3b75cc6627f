"""Architecture checks for the seed's cGAN (UNet1 + spectral-norm PatchGAN) and the DDPM U-Net."""

from __future__ import annotations

import pytest
import torch
from helpers_train import TINY_UNET, single_thread  # noqa: F401 (autouse fixture)
from torch import nn
from torch.nn.utils import parametrize

from rocksr.models.cgan import PatchDiscriminator, UNet1, d_hinge_loss, g_loss
from rocksr.models.unet import ConditionalUNet, unet_config


@pytest.fixture(scope="module")
def x512() -> torch.Tensor:
    return torch.rand(1, 1, 512, 512, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_unet1_maps_512_to_512_in_range(x512):
    g = UNet1().eval()
    with torch.no_grad():
        y = g(x512)
    assert y.shape == (1, 1, 512, 512)
    assert y.min() >= -1 and y.max() <= 1
    # layer-by-layer sizes stated in the seed: 512 -> 256 (enc) -> 255 (mid) -> 510 (dec) -> 512
    h = g.enc(x512)
    assert h.shape[-1] == 256
    h = g.mid(h)
    assert h.shape[1:] == (128, 255, 255)
    assert g.dec(h).shape[1:] == (64, 510, 510)
    assert g.out.in_channels == 65 and g.out.kernel_size == (1, 1)


def test_unet1_other_sizes():
    y = UNet1()(torch.zeros(2, 1, 48, 40))
    assert y.shape == (2, 1, 48, 40)


def test_patchgan_63x63_on_512(x512):
    d = PatchDiscriminator().eval()
    with torch.no_grad():
        out = d(x512, x512)
    assert out.shape == (1, 1, 63, 63)


def test_patchgan_spectral_norm_on_every_conv():
    d = PatchDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.in_channels for c in convs] == [2, 64, 128, 256, 512]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.kernel_size[0] for c in convs] == [4, 4, 4, 4, 1]
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert all(
        type(p).__name__ == "_SpectralNorm" for c in convs for p in c.parametrizations["weight"]
    )
    norms = [m for m in d.modules() if isinstance(m, nn.InstanceNorm2d)]
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(norms) == 4 and len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)


def test_hinge_and_generator_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # max(0, 1-2)=0, max(0, 0.5)=0.5 -> 0.25 ; max(0, 1-2)=0, max(0, 1.5)=1.5 -> 0.75
    assert d_hinge_loss(real, fake).item() == pytest.approx(1.0)
    a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    total, adv, l1 = g_loss(torch.ones(1, 1, 3, 3), a, b, lambda_l1=100.0)
    assert adv.item() == -1.0 and l1.item() == 0.5 and total.item() == pytest.approx(49.0)


def test_ddpm_unet_two_in_one_out():
    m = ConditionalUNet(TINY_UNET)
    assert m.unet.conv_in.in_channels == 2 and m.unet.conv_out.out_channels == 1
    y = m(torch.randn(3, 2, 16, 16), torch.tensor([0, 10, 999]))
    assert y.shape == (3, 1, 16, 16)
    kinds = [type(b).__name__ for b in m.unet.down_blocks]
    assert kinds == ["DownBlock2D", "AttnDownBlock2D"]


def test_ddpm_unet_config_validation():
    with pytest.raises(ValueError, match="attention_levels"):
        unet_config({**TINY_UNET, "attention_levels": [True]})
    with pytest.raises(ValueError, match="norm_num_groups"):
        unet_config({**TINY_UNET, "norm_num_groups": 3})


def test_ddpm_unet_runs_big_cpu_batches_in_micro_batches(monkeypatch):
    """CPU inference splits a batch into micro-batches of CPU_MICRO_BATCH_PIXELS (a working set
    that fits the caches); the outputs equal one call's to float rounding. Training (grad on)
    takes the batch whole."""
    import rocksr.models.unet as unet_mod

    torch.manual_seed(0)
    net = ConditionalUNet(TINY_UNET).eval()
    x, t = torch.randn(5, 2, 16, 16), torch.tensor([3, 50, 7, 99, 0])
    with torch.no_grad():
        whole = net(x, t)
    sizes = []
    inner = net.unet.forward
    monkeypatch.setattr(
        net.unet, "forward", lambda a, b, **k: sizes.append(len(a)) or inner(a, b, **k)
    )
    monkeypatch.setattr(unet_mod, "CPU_MICRO_BATCH_PIXELS", 2 * 16 * 16)
    with torch.no_grad():
        parts = net(x, t)
    assert sizes == [2, 2, 1]
    assert torch.allclose(parts, whole, atol=1e-5)
    sizes.clear()
    net(x, t).sum().backward()  # training: one call
    assert sizes == [5]
