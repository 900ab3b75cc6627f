"""Stage `train_ddpm`: train the conditional DDPM (resumable; see :class:`rocksr.training.trainer.Trainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_ddpm(store: str | Path, splits: str | Path, **settings: Any) -> None:
    """Train the conditional DDPM on ``store``'s train split; ``settings``: the keyword-only settings of
    :class:`~rocksr.training.trainer.Trainer` (outputs, ``params``, ``seed``, ``device``)."""
    from rocksr.training.ddpm_task import DDPMTask
    from rocksr.training.trainer import Trainer

    Trainer(DDPMTask, store=store, splits=splits, **settings).fit()
