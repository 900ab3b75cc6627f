"""U-Net inference on a CPU through ONNX Runtime: the same network, about 2x the throughput.

PyTorch's eager CPU path runs each of the U-Net's small layers (16-32 channels, GroupNorm, SiLU,
4-head attention) as a separate kernel with fresh activations. ONNX Runtime (a well-kept
inference engine with wheels on PyPI for every platform torch has) runs each SiLU as one fused
kernel, the convolutions in its blocked NCHWc layout and the attention as one fused operator
(below), and plans its memory once. On the demo DDPM (16 tiles of 128 px, DDIM-10, 2 threads)
this gives 2.0-2.2x the images x steps per second of one PyTorch call per batch, outputs within
3e-6 of it (``benchmarks/unet_inference.py``; docs/benchmarks.md).

How: the diffusers ``UNet2DModel`` is exported with PyTorch's TorchScript ONNX exporter (batch and
image size dynamic) into memory, never to disk, and run by an ``InferenceSession`` on as many
threads as torch uses. The export costs about 0.5 s per network (and 0.6 s once per process to
import onnx), so only calls of at least :data:`ORT_MIN_PIXELS` pixels (one 128 px tile) of a
network of at least :data:`ORT_MIN_PARAMETERS` parameters go through ONNX Runtime, and a network
is exported again only when its weights change (compared by value with a copy kept at the export). The
choice depends on the call alone, never on what ran before it, so a sharded prediction
(batch-aligned shards) stays byte identical to the unsharded one.

``ROCKSR_CPU_INFERENCE=torch`` turns it off (PyTorch micro-batches only); where onnxruntime is
missing or an export fails, rocksr says so once and runs PyTorch. GPUs never use it.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
import weakref

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

ENV = "ROCKSR_CPU_INFERENCE"
BACKENDS = ("onnxruntime", "torch")

# Calls of at least this many pixels (batch x height x width) run through ONNX Runtime: a
# batch of the demo's 128 px tiles does; smaller calls stay in PyTorch, where a 0.5 s export
# would cost more than it saves.
ORT_MIN_PIXELS = 128 * 128
# Networks of fewer parameters stay in PyTorch: a call of the tests' tiny U-Nets (45,000 to
# 71,000) takes a few milliseconds there, so the export would not pay back within a job. The
# demo's U-Nets (280,000) and the study's (tens of millions) go through ONNX Runtime.
ORT_MIN_PARAMETERS = 100_000


def cpu_backend() -> str:
    """The CPU inference backend ``ROCKSR_CPU_INFERENCE`` asks for (default onnxruntime)."""
    name = os.environ.get(ENV, "onnxruntime").strip().lower() or "onnxruntime"
    if name not in BACKENDS:
        raise ValueError(f"{ENV}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


class UNetCall(nn.Module):
    """``unet(x, t)`` -> its output tensor: a diffusers U-Net as a plain two-input module."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, return_dict=False)[0]


def export_onnx(unet: nn.Module, in_channels: int) -> bytes:
    """``unet`` (a diffusers ``UNet2DModel``, eval mode) as an ONNX model: inputs ``x``
    (B, in_channels, H, W) float32 and ``t`` (B,) int64, output ``y`` (B, 1, H, W); B, H and W
    dynamic."""
    from diffusers.models.attention_processor import Attention

    sample = torch.zeros((2, in_channels, 64, 64))
    steps = torch.zeros(2, dtype=torch.long)
    buf = io.BytesIO()
    attentions = [m for m in unet.modules() if isinstance(m, Attention)]
    saved = [m.processor for m in attentions]
    was_training = unet.training
    try:
        for m in attentions:
            m.set_processor(_ExportAttention())
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # the tracer's notes on diffusers' shape asserts (constants of this network) and the
            # legacy exporter's deprecation (torch is pinned; its replacement needs onnxscript)
            warnings.simplefilter("ignore")
            torch.onnx.export(
                UNetCall(unet).eval(),
                (sample, steps),
                buf,
                input_names=["x", "t"],
                output_names=["y"],
                dynamic_axes={
                    "x": {0: "b", 2: "h", 3: "w"},
                    "t": {0: "b"},
                    "y": {0: "b", 2: "h", 3: "w"},
                },
                opset_version=17,
                custom_opsets={"com.microsoft": 1},
                dynamo=False,
            )
    finally:
        for m, processor in zip(attentions, saved, strict=True):
            m.set_processor(processor)
        unet.train(was_training)
    return buf.getvalue()


class _MultiHeadAttention(torch.autograd.Function):
    """Multi-head attention on (B, N, heads x d) queries, keys and values, scale 1/sqrt(d): what
    diffusers' processor computes around ``F.scaled_dot_product_attention``, exported as ONNX
    Runtime's fused ``MultiHeadAttention`` (com.microsoft; one pass over the keys, no N x N matrix
    in memory): 1.7x the exporter's MatMul-Softmax-MatMul at the demo's 4 heads of 8 channels
    over 32 x 32 tokens, outputs within 3e-7."""

    @staticmethod
    def forward(ctx, q, k, v, heads: int):  # noqa: ANN001, ANN205
        b, n, c = q.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, -1, heads, c // heads).transpose(1, 2)

        out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
        return out.transpose(1, 2).reshape(b, n, c)

    @staticmethod
    def symbolic(g, q, k, v, heads: int):  # noqa: ANN001, ANN205
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=heads)
        out.setType(q.type())
        return out


class _ExportAttention:
    """diffusers' ``AttnProcessor2_0`` for the U-Net's self-attention over a (B, C, H, W) map, the
    same arithmetic, with the attention itself one :class:`_MultiHeadAttention`; every other use
    of an ``Attention`` (cross-attention, masks, spatial or q/k norms) goes to diffusers'."""

    def __call__(
        self,
        attn,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ):  # noqa: ANN001, ANN204
        from diffusers.models.attention_processor import AttnProcessor2_0

        plain = encoder_hidden_states is None and attention_mask is None and hidden_states.ndim == 4
        if (
            not plain
            or attn.spatial_norm is not None
            or attn.norm_q is not None
            or attn.norm_k is not None
        ):
            return AttnProcessor2_0()(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb
            )
        residual = hidden_states
        b, c, h, w = hidden_states.shape
        x = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
        x = _MultiHeadAttention.apply(attn.to_q(x), attn.to_k(x), attn.to_v(x), attn.heads)
        x = attn.to_out[1](attn.to_out[0](x))
        x = x.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            x = x + residual
        return x / attn.rescale_output_factor


def weights_of(module: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer of ``module``, in a fixed order."""
    return [*module.parameters(), *module.buffers()]


def same_weights(module: nn.Module, snapshot: list[torch.Tensor]) -> bool:
    """Whether ``module``'s parameters and buffers equal ``snapshot`` value for value. Compared
    by value, not by version counter: a write through ``.data`` or a numpy view, a replaced
    tensor or a checkpoint loaded in place are all seen (about 0.1 ms for the demo's U-Net)."""
    now = weights_of(module)
    return len(now) == len(snapshot) and all(
        a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        for a, b in zip(now, snapshot, strict=True)
    )


# one export at a time: it swaps the attention processors of the network it exports
_EXPORT_LOCK = threading.Lock()


class OrtUNet:
    """Runs one diffusers U-Net with ONNX Runtime (see the module's docstring)."""

    def __init__(self, unet: nn.Module, in_channels: int) -> None:
        self.unet = unet
        self.in_channels = int(in_channels)
        self.n_parameters = sum(w.numel() for w in unet.parameters())
        self.snapshot: list[torch.Tensor] | None = None  # the weights of the last export
        self.model: bytes | None = None  # that export
        self.threads: int | None = None  # the session's thread count
        self.session = None
        self.failed = False

    def ready(self, x: torch.Tensor, t: torch.Tensor) -> bool:
        """Whether the call on ``x``, ``t`` goes through ONNX Runtime (exporting first where the
        weights changed since the last export; a new session where torch's thread count did).
        Calls too small to repay an export stay in PyTorch (fewer than :data:`ORT_MIN_PIXELS`
        pixels, or a network of fewer than :data:`ORT_MIN_PARAMETERS` parameters), and so do
        calls ONNX Runtime would not compute as PyTorch does: a dtype other than float32, bf16
        autocast, fractional timesteps (the export's are whole numbers, as rocksr's samplers
        give)."""
        if self.failed or x.shape[0] * x.shape[-2] * x.shape[-1] < ORT_MIN_PIXELS:
            return False
        if self.n_parameters < ORT_MIN_PARAMETERS:
            return False
        if x.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
            return False
        if t.is_floating_point() and not bool((t == t.round()).all()):
            return False
        threads = torch.get_num_threads()
        try:
            if self.model is None or not same_weights(self.unet, self.snapshot):
                if any(w.dtype != torch.float32 for w in self.unet.parameters()):
                    return False
                self.session = None
                with _EXPORT_LOCK:
                    self.model = export_onnx(self.unet, self.in_channels)
                self.snapshot = [w.detach().clone() for w in weights_of(self.unet)]
            if self.session is None or self.threads != threads:
                self.session, self.threads = self._session(self.model, threads), threads
        except Exception as e:  # noqa: BLE001  (any failure: PyTorch still runs the network)
            self.failed, self.session, self.model = True, None, None
            log.warning(
                "ONNX Runtime unavailable for the U-Net (%s: %s); running PyTorch",
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
            )
            return False
        return True

    @staticmethod
    def _session(model: bytes, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # threads sleep between calls instead of spinning: the sampler's own arithmetic between
        # network calls then has the cores (measured faster on 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        feed = {  # float32 x and whole-number t: ready() sent every other call to PyTorch
            "x": np.ascontiguousarray(x.detach().numpy()),
            "t": np.ascontiguousarray(t.detach().to(torch.long).numpy()),
        }
        return torch.from_numpy(self.session.run(None, feed)[0])


_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ort_runner(owner: nn.Module, unet: nn.Module, in_channels: int) -> OrtUNet | None:
    """The ONNX Runtime runner of ``owner``'s ``unet`` (kept beside the module, so that copies,
    pickles and state dicts of it never see a session), or None where the backend is torch."""
    if cpu_backend() != "onnxruntime":
        return None
    runner = _RUNNERS.get(owner)
    if runner is None or runner.unet is not unet:
        runner = _RUNNERS[owner] = OrtUNet(unet, in_channels)
    return runner
