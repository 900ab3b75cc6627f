"""Stage `train_ddpm`: train the conditional DDPM (resumable; see :class:`rocksr.training.trainer.Trainer`)."""

from __future__ import annotations

from pathlib import Path


def train_ddpm(
    store: str | Path,
    splits: str | Path,
    *,
    best_ckpt: str | Path,
    history_csv: str | Path,
    samples_dir: str | Path,
    state_dir: str | Path,
    params: dict,
    seed: int,
    device: str = "auto",
) -> None:
    """Train the conditional DDPM on ``store``'s train split; see :class:`~rocksr.training.trainer.Trainer`."""
    from rocksr.training.ddpm_task import DDPMTask
    from rocksr.training.trainer import Trainer

    Trainer(
        DDPMTask,
        store=store,
        splits=splits,
        best_ckpt=best_ckpt,
        history_csv=history_csv,
        samples_dir=samples_dir,
        state_dir=state_dir,
        params=params,
        seed=seed,
        device=device,
    ).fit()
