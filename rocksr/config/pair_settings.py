"""A sample's pair settings: which page or series of each image, and how the pair is brought
onto one grid (torch- and numpy-free: the CLI parses them at start-up)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PairSettings:
    """How one sample's raw pair is read onto one grid (its sample-sheet columns; None = unset):
    the page of a stack and the series of a multi-series file of each modality, the micro-CT's
    up-sampling onto the SEM grid (``mct_scale``: an integer or ``auto``), a ``crop``
    ``[y0, x0, h, w]`` of the SEM grid, and the valid-area ``mask`` (``none``, ``auto_fov`` or a
    mask image path)."""

    mct_page: int | None = None
    sem_page: int | None = None
    mct_series: int | None = None
    sem_series: int | None = None
    mct_scale: int | str | None = None
    crop: list[int] | None = None
    mask: str | None = None

    @classmethod
    def of_sample(cls, sample: Mapping[str, Any]) -> PairSettings:
        """The settings of a sample of the config (its other keys, e.g. ``name``, left out)."""
        return cls(**{f.name: sample.get(f.name) for f in fields(cls)})

    @classmethod
    def from_json(cls, text: str) -> PairSettings:
        """Settings from JSON text (``rocksr normalize --pair-settings``); an unknown key or a
        non-object is a ValueError naming it."""
        try:
            values = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"pair settings are not valid JSON ({exc}): {text[:80]!r}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"pair settings must be a JSON object, not {text!r}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ValueError(f"unknown pair setting(s) {', '.join(unknown)} (known: {known})")
        return cls(**values)

    def to_json(self) -> str:
        """Every setting, sorted, compact (the workflow's command-line option)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


# every setting unset: the first page of each image, the pair on one grid as it is, no mask
UNSET = PairSettings()
