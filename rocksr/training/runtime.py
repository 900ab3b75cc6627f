"""A training job's runtime: seeding, the device, mixed precision, channels-last and
``torch.compile``, DDP wrapping, and the SIGTERM flag that stops a job at a checkpoint."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
from typing import Any

import numpy as np
import torch
from torch import nn

from rocksr.config.merge import section_defaults
from rocksr.config.training import Loop
from rocksr.training.distributed import SINGLE, Dist

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- runtime settings
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (global state, for third-party code)
    torch.manual_seed(seed)


class Runtime:
    """Precision / memory format / compile choices from the config, resolved for a device.

    ``precision``: auto (bf16 autocast on CUDA with bf16 support, else fp32) | fp32 | bf16;
    ``channels_last``: auto (on CUDA) | true | false; ``compile``: false | true. ``dist``: this
    process's place in a multi-process run (:mod:`rocksr.training.distributed`).
    """

    def __init__(self, cfg: dict, device: torch.device, dist: Dist = SINGLE) -> None:
        defaults = section_defaults(Loop)
        cfg = {**defaults, **{k: v for k, v in cfg.items() if k in defaults}}
        self.device, self.dist = device, dist
        cuda = device.type == "cuda"
        prec = str(cfg["precision"])
        if prec == "auto":
            prec = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        if prec not in ("fp32", "bf16"):
            raise ValueError(f"precision must be auto | fp32 | bf16, got {prec!r}")
        self.precision = prec
        cl = cfg["channels_last"]
        self.channels_last = cuda if cl == "auto" else bool(cl)
        self.compile = bool(cfg["compile"])
        self.deterministic = bool(cfg["deterministic"])
        if cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            if self.deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True, warn_only=True)

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def wrap(self, m: nn.Module, sync: bool = True) -> nn.Module:
        """The callable used for training (compiled when asked); weights stay shared with ``m``.
        ``sync``: its gradients are averaged over the processes of a multi-process run
        (DistributedDataParallel); False for a forward whose parameters get no gradient."""
        if sync:
            m = self.dist.wrap(m, self.device)
        return torch.compile(m) if self.compile else m

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def gpu_memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {}
    return {
        "gpu_mem_mb": torch.cuda.memory_allocated(device) / 2**20,
        "gpu_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
    }


# --------------------------------------------------------------------------- SIGTERM
class StopFlag:
    """Sets ``requested`` on SIGTERM; the loop then writes ``last`` and exits non-zero."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None

    def __enter__(self) -> StopFlag:
        try:
            self._prev = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not in the main thread: no handler
            self._prev = None
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM received: will write the last checkpoint and exit")
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGTERM, self._prev)
