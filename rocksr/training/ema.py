"""Exponential moving average of a module's weights (used for DDPM validation and evaluation)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Shadow copy ``self.module`` updated as p_ema <- d p_ema + (1-d) p after each optimizer step,
    with the usual warm-up d_n = min(decay, (1+n)/(10+n)) so early averages are not stuck at init."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        self.decay = float(decay)
        self.warmup = warmup
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        ema_p = [p for p in self.module.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(
            ema_p, [p.to(e.dtype) for p, e in zip(src_p, ema_p, strict=True)], 1.0 - d
        )
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "module": self.module.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["module"])
