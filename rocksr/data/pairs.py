"""A raw pair read and brought onto one grid as ``normalize`` sees it (reads the images).

:func:`read_registered_pair` reads a sample's micro-CT and SEM (its page / series choices),
up-samples the micro-CT onto the SEM grid and crops both (:mod:`rocksr.data.registration`), and
finds or reads its valid-area mask (:mod:`rocksr.data.masks`): a :class:`RegisteredPair`. What
it reads and how is a sample's :class:`PairSettings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from rocksr.config.pair_settings import UNSET, PairSettings
from rocksr.data.images import read_image
from rocksr.data.masks import sample_mask
from rocksr.data.registration import register


@dataclass(frozen=True)
class RegisteredPair:
    """A raw pair on the SEM grid: ``images`` (``mct``, ``sem``), the micro-CT's up-sampling
    ``factor``, the valid-area mask (``valid``, None = every pixel) and its description."""

    images: dict[str, np.ndarray]
    factor: int
    valid: np.ndarray | None
    mask_info: dict

    def valid_values(self, key: str) -> np.ndarray:
        """The pixels of ``images[key]`` inside the mask (all of them without one)."""
        a = self.images[key]
        return a if self.valid is None else a[self.valid]


def read_registered_pair(
    mct_path: str | os.PathLike,
    sem_path: str | os.PathLike,
    settings: PairSettings = UNSET,
) -> RegisteredPair:
    """Read a raw pair and bring it onto one grid as ``normalize`` does, with a sample's
    ``settings``."""
    s = settings
    mct = read_image(mct_path, s.mct_page, s.mct_series)
    sem = read_image(sem_path, s.sem_page, s.sem_series)
    where = f"{mct_path} / {sem_path}"
    reg_mct, reg_sem, factor = register(mct, sem, s.mct_scale, s.crop, where)
    valid, info = sample_mask(s.mask, mct, sem.shape[:2], factor, s.crop, where)
    return RegisteredPair({"mct": reg_mct, "sem": reg_sem}, factor, valid, info)
