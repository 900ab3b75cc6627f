"""Settings shared by every model kind's training: budget, cadence, logging and runtime.

Budget, cadence and logging keys (:data:`RESUMABLE_KEYS`) may change between a run and its
resumption and are not part of the experiment's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

RESUMABLE_KEYS = frozenset(
    {
        "max_steps",
        "epochs",
        "val_every",
        "ckpt_every",
        "log_every",
        "n_val_samples",
        "val_sample_tiles",
        "val_batch_size",
        "val_max_batches",
        "val_sampler",
        "val_sampler_steps",
        "compile",
        "prior_checkpoint",  # where the prior's checkpoint is; its SHA-256 is in the fingerprint
    }
)


@dataclass
class Loop:
    """Keys every model section has (the shared training loop and runtime)."""

    batch_size: int = 8
    max_steps: int | None = None
    epochs: int | None = None
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 10
    n_val_samples: int = 4
    val_batch_size: int | None = None  # None: batch_size
    val_max_batches: int | None = None
    lr_decay: str = "none"  # none | cosine: from lr down to 0 over the run (lr_schedule)
    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool = False
    deterministic: bool = False


def resolve_training(section: type, params: dict, what: str) -> dict:
    """A model section plus its ``data`` section (the trainer's ``params``), every default filled:
    the resolved config that checkpoints record and fingerprints hash."""
    from rocksr.config.choices import LR_DECAYS
    from rocksr.config.loader import Data
    from rocksr.config.merge import resolve

    params = dict(params)
    data = params.pop("data", None)
    cfg = resolve(section, params, what)
    cfg["data"] = resolve(Data, data, "data")
    if cfg["lr_decay"] not in LR_DECAYS:
        raise ValueError(f"{what}.lr_decay must be one of {LR_DECAYS}, got {cfg['lr_decay']!r}")
    return cfg
