"""Stage `train_cgan`: train the pix2pix cGAN (resumable; see :class:`rocksr.training.trainer.Trainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_cgan(store: str | Path, splits: str | Path, **settings: Any) -> None:
    """Train the pix2pix cGAN on ``store``'s train split; ``settings``: the keyword-only settings of
    :class:`~rocksr.training.trainer.Trainer` (outputs, ``params``, ``seed``, ``device``)."""
    from rocksr.training.cgan_task import CGANTask
    from rocksr.training.trainer import Trainer

    Trainer(CGANTask, store=store, splits=splits, **settings).fit()
