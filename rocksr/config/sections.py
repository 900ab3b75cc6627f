"""Every typed config section by its key in ``config.yaml`` (for the workflow and the tests)."""

from __future__ import annotations

from rocksr.config.cgan import CGAN
from rocksr.config.ddpm import DDPM
from rocksr.config.enhance import Enhance
from rocksr.config.evaluate import Evaluate
from rocksr.config.leak import LeakStudy
from rocksr.config.loader import Data
from rocksr.config.normalize import Normalize
from rocksr.config.regress import Regress
from rocksr.config.split import Split
from rocksr.config.store import Store
from rocksr.config.tiling import Tiling

SECTIONS: dict[str, type] = {
    "normalize": Normalize,
    "tiling": Tiling,
    "store": Store,
    "split": Split,
    "data": Data,
    "cgan": CGAN,
    "regress": Regress,
    "ddpm": DDPM,
    "evaluate": Evaluate,
    "enhance": Enhance,
    "leak_study": LeakStudy,
}
