"""U-Net inference on a CPU through ONNX Runtime (rocksr.models.cpu_runtime): the same outputs as
PyTorch within float rounding, re-exported when the weights change, PyTorch where asked, where
the call is small, while training and where the export fails."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from helpers_train import TINY_UNET

from rocksr.models import cpu_runtime
from rocksr.models.regress import RegressionUNet
from rocksr.models.unet import ConditionalUNet

# two levels, attention at the second and in the bottleneck: every block type the demo has,
# with 4 heads per attention as the demo's (head dimension 4 on 16 channels)
UNET = {**TINY_UNET, "attention_head_dim": 4}
TOL = 1e-5  # model units; one grey level is 0.0078


@pytest.fixture(autouse=True)
def onnxruntime_backend(monkeypatch) -> None:
    monkeypatch.delenv(cpu_runtime.ENV, raising=False)
    monkeypatch.setattr(cpu_runtime, "ORT_MIN_PIXELS", 32 * 32)
    monkeypatch.setattr(cpu_runtime, "ORT_MIN_PARAMETERS", 0)
    torch.set_num_threads(1)


def net(in_channels: int = 3, seed: int = 0) -> ConditionalUNet:
    torch.manual_seed(seed)
    m = ConditionalUNet(UNET, in_channels=in_channels).eval()
    with torch.no_grad():  # non-zero outputs everywhere (diffusers zeroes nothing, but be sure)
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return m


def torch_out(m: ConditionalUNet, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m.unet(x, t, return_dict=False)[0]


def runner_of(m: torch.nn.Module) -> cpu_runtime.OrtUNet | None:
    return cpu_runtime._RUNNERS.get(m)


@pytest.mark.parametrize(("batch", "size"), [(1, 32), (5, 32), (2, 48), (3, 64)])
def test_onnxruntime_matches_pytorch_within_float_rounding(batch, size) -> None:
    m = net()
    x = torch.randn(batch, 3, size, size)
    t = torch.randint(0, 1000, (batch,))
    with torch.no_grad():
        got = m(x, t)
    assert runner_of(m).session is not None  # it did run through ONNX Runtime
    want = torch_out(m, x, t)
    assert got.shape == want.shape == (batch, 1, size, size)
    assert float(want.abs().max()) > 0.1
    assert float((got - want).abs().max()) < TOL


def test_one_timestep_for_the_batch_and_the_regression_unet() -> None:
    m = net()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        got = m(x, torch.tensor([7]))
    assert float((got - torch_out(m, x, torch.full((3,), 7))).abs().max()) < TOL
    torch.manual_seed(1)
    r = RegressionUNet(UNET).eval()
    mct = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        got = r(mct)
        want = r.net.unet(mct, torch.zeros(2, dtype=torch.long), return_dict=False)[0]
    assert runner_of(r.net).session is not None
    assert float((got - want).abs().max()) < TOL


def test_changed_weights_are_exported_again() -> None:
    m = net()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    with torch.no_grad():
        m(x, t)
        first = runner_of(m).session
        m(x, t)
        assert runner_of(m).session is first  # unchanged weights: the same session
        m.unet.conv_out.weight.mul_(2.0)  # an optimiser step updates in place
        got = m(x, t)
    assert runner_of(m).session is not first
    assert float((got - torch_out(m, x, t)).abs().max()) < TOL
    m.load_state_dict(net(seed=5).state_dict())  # a checkpoint loaded into the same module
    with torch.no_grad():
        got = m(x, t)
    assert float((got - torch_out(m, x, t)).abs().max()) < TOL
    m.unet.conv_out.weight.data.mul_(3.0)  # through .data: no version counter sees this
    with torch.no_grad():
        got = m(x, t)
    assert float((got - torch_out(m, x, t)).abs().max()) < TOL


def test_a_new_thread_count_reuses_the_export() -> None:
    m = net()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    with torch.no_grad():
        m(x, t)
        model, first = runner_of(m).model, runner_of(m).session
        torch.set_num_threads(2)
        try:
            got = m(x, t)
        finally:
            torch.set_num_threads(1)
    assert runner_of(m).model is model and runner_of(m).session is not first
    assert runner_of(m).threads == 2
    assert float((got - torch_out(m, x, t)).abs().max()) < TOL


def test_calls_onnxruntime_would_compute_otherwise_stay_in_pytorch() -> None:
    m = net()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = m(x, torch.tensor([10.7, 900.5]))  # fractional timesteps
        assert runner_of(m).model is None
        assert torch.equal(got, torch_out(m, x, torch.tensor([10.7, 900.5])))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert m(x, torch.tensor([1, 2])).dtype == torch.bfloat16
        assert runner_of(m).model is None
        got = m(x, 7)  # a plain int, as diffusers accepts
        assert runner_of(m).model is not None
        assert float((got - torch_out(m, x, torch.full((2,), 7))).abs().max()) < TOL
        whole = torch.tensor([3.0, 500.0])  # whole-number float timesteps: ONNX Runtime
        assert float((m(x, whole) - torch_out(m, x, whole)).abs().max()) < TOL


def test_weights_made_in_inference_mode_run_through_onnxruntime() -> None:
    with torch.inference_mode():
        m = net()
        x, t = torch.randn(2, 3, 32, 32), torch.tensor([4, 5])
        got = m(x, t)
        want = m.unet(x, t, return_dict=False)[0]
    assert runner_of(m).session is not None
    assert float((got - want).abs().max()) < TOL


def test_small_calls_training_gradients_and_the_torch_backend_stay_in_pytorch(monkeypatch) -> None:
    m = net()
    with torch.no_grad():
        m(torch.randn(1, 3, 16, 16), torch.tensor([3]))  # 256 pixels: below the threshold
    assert runner_of(m).session is None
    m(torch.randn(2, 3, 32, 32), torch.tensor([3, 4]))  # gradients on: training
    m.train()
    with torch.no_grad():
        m(torch.randn(2, 3, 32, 32), torch.tensor([3, 4]))  # training mode (dropout)
    assert runner_of(m).session is None
    monkeypatch.setenv(cpu_runtime.ENV, "torch")
    other = net()
    with torch.no_grad():
        other(torch.randn(2, 3, 32, 32), torch.tensor([3, 4]))
    assert runner_of(other) is None


def test_a_bad_backend_name_is_refused(monkeypatch) -> None:
    monkeypatch.setenv(cpu_runtime.ENV, "tensorrt")
    with pytest.raises(ValueError, match="ROCKSR_CPU_INFERENCE='tensorrt'.*onnxruntime, torch"):
        cpu_runtime.cpu_backend()


def test_a_failed_export_says_so_once_and_runs_pytorch(monkeypatch, caplog) -> None:
    def broken(*_a, **_k):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(cpu_runtime, "export_onnx", broken)
    m = net()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    with caplog.at_level(logging.WARNING, logger="rocksr.models.cpu_runtime"), torch.no_grad():
        a, b = m(x, t), m(x, t)
    warned = [r for r in caplog.records if "ONNX Runtime unavailable" in r.getMessage()]
    assert len(warned) == 1 and "no exporter here" in warned[0].getMessage()
    assert torch.equal(a, torch_out(m, x, t)) and torch.equal(a, b)


def test_the_session_never_travels_with_the_module() -> None:
    m = net()
    with torch.no_grad():
        m(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))
    assert runner_of(m).session is not None
    m.unet.train()
    cpu_runtime.export_onnx(m.unet, 3)
    assert m.unet.training  # the export leaves the network's mode as it was
    m.eval()
    twin = copy.deepcopy(m)  # the EMA copies the model
    assert runner_of(twin) is None and set(twin.state_dict()) == set(m.state_dict())
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([5, 6])
    with torch.no_grad():
        assert float((twin(x, t) - m(x, t)).abs().max()) < TOL
