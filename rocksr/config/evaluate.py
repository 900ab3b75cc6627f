"""Defaults of the ``evaluate`` section: prediction, metrics, figures and the sampler study."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SamplerStudy:
    enabled: bool = False
    n_tiles: int = 8
    tolerance_db: float = 0.3
    configs: list[dict] = field(
        default_factory=lambda: [
            {"sampler": "ancestral", "steps": None},
            {"sampler": "ddim", "steps": [10, 20, 50, 100]},
            {"sampler": "dpmsolver", "steps": [10, 20, 50]},
        ]
    )


@dataclass
class Evaluate:
    sampler: str = "ddim"
    steps: int | None = 50
    batch_size: int = 16
    seed: int = 0
    n_samples: int = 1
    # at most this many test views are predicted and scored (rule test_views), spread evenly
    # over the test split; None: all
    test_views: int | None = None
    shards: int = 1
    porosity_threshold: float | None = None
    figure_seed: int = 0
    sampler_study: SamplerStudy = field(default_factory=SamplerStudy)
