"""Defaults of the ``leak_study`` section: how much a leaky split inflates the numbers."""

from __future__ import annotations

from dataclasses import dataclass

# the split strategy whose leak the study measures: the study's own, each view drawn at random
LEAKY_STRATEGY = "random"


@dataclass
class LeakStudy:
    """Train ``model`` again, with the same config and budget, on the study's leaky ``random``
    split of the same views, and compare its test scores with the default split's."""

    enabled: bool = False
    model: str = "cgan"
