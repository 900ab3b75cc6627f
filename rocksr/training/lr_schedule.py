"""The learning rate over a training run: a linear warm-up, then constant or a half cosine.

A pure function of the step, so an exact resume needs no scheduler state. The trainer applies
it to every optimizer of the task (:meth:`Trainer._set_learning_rate`); where it returns None
the trainer leaves the rate alone (a scheduler of the task's own, the DDPM's plateau, owns it).
"""

from __future__ import annotations

import math

from rocksr.config.choices import LR_DECAYS


def lr_factor(step: int, total: int, warmup: int = 0, decay: str = "none") -> float | None:
    """The factor of the configured learning rate for the step after ``step`` steps of
    ``total``: ``(step + 1) / warmup`` during a warm-up of ``warmup`` steps, then 1
    (``decay`` none; None after the step that ends the warm-up) or a half cosine from 1 down
    towards 0 at ``total`` (``cosine``, over the steps after the warm-up)."""
    if decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {decay!r}")
    if step < warmup:
        return (step + 1) / warmup
    if decay == "none":
        return 1.0 if warmup and step == warmup else None
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))
