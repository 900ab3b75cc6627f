"""The contrast normalization and scale that ``rocksr enhance`` applies to its input.

:func:`read_normalization_record` reads the training data's normalization from a checkpoint,
:func:`mct_scale_factor` decides the input's up-sampling factor, and :class:`Normalizer` maps
every input slice to the 8-bit grey levels the model was trained on (the modes are described
in ``docs/enhance.md``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rocksr.config.choices import ENHANCE_NORMALIZE
from rocksr.data.normalize import stretch_fixed
from rocksr.enhance.errors import EnhanceError
from rocksr.enhance.inputs import ScaledSource, Source, stack_limits

log = logging.getLogger(__name__)

NORMALIZE_MODES = ENHANCE_NORMALIZE
NORMALIZATION_METHODS = ("percentile",)
# where training took its percentiles: every pixel, each sample's circular FOV, mask images/mixed
WITHIN = ("image", "auto_fov", "masks")


def read_normalization_record(cfg: dict, checkpoint: str | os.PathLike) -> dict:
    """The micro-CT normalization recorded in a checkpoint config, checked, with defaults.

    Expected: ``cfg["normalization"] = {"method": "percentile", "mct": {p_low, p_high, clahe,
    clahe_clip, clahe_kernel}, "sem": {...}, "within": "image" | "auto_fov" | "masks", ...}``
    (other keys are kept, unused).  Returns ``{"method", "params", "within"}`` (``params`` = the
    ``mct`` parameters, defaults filled; ``within`` where the percentiles were taken, ``image``
    for records that predate masks)."""
    from rocksr.data.normalize import NORMALIZE_DEFAULTS

    rec = cfg.get("normalization")
    if not rec:
        raise EnhanceError(
            f"{checkpoint}: the checkpoint does not record the contrast normalization of its "
            "training data (it was written before rocksr recorded it); pass --normalize "
            "percentile (0.5/99.5 percentile stretch, the default of training) or --normalize "
            "none (input already normalized to 8 bits)"
        )
    method = rec.get("method", "percentile") if isinstance(rec, dict) else None
    if method not in NORMALIZATION_METHODS or not isinstance(rec.get("mct"), dict):
        raise EnhanceError(
            f"{checkpoint}: unsupported normalization record {rec!r}; expected method "
            f"{'|'.join(NORMALIZATION_METHODS)} with an 'mct' section; pass --normalize "
            "percentile or none"
        )
    unknown = sorted(set(rec["mct"]) - set(NORMALIZE_DEFAULTS))
    if unknown:
        raise EnhanceError(
            f"{checkpoint}: normalization record has unknown mct keys {unknown}; pass "
            "--normalize percentile or none"
        )
    within = rec.get("within", "image")
    if within not in WITHIN:
        raise EnhanceError(
            f"{checkpoint}: normalization record has within {within!r}, not one of "
            f"{', '.join(WITHIN)}; pass --normalize percentile or none"
        )
    return {"method": method, "params": {**NORMALIZE_DEFAULTS, **rec["mct"]}, "within": within}


def mct_scale_factor(spec: str | int, normalize: str, cfg: dict, checkpoint: Path) -> int:
    """The input's up-sampling factor: an integer as given, or ``auto``: the checkpoint's
    recorded ``mct_scale`` for a raw input (normalize from-checkpoint / percentile), else 1."""
    if str(spec) != "auto":
        try:
            factor = int(spec)
        except ValueError:
            factor = 0
        if factor < 1 or str(factor) != str(spec).strip():
            raise EnhanceError(f"--mct-scale must be a positive integer or auto, got {spec!r}")
        return factor
    if normalize == "none":
        return 1
    rec = cfg.get("normalization") or {}
    if "mct_scales" in rec and rec.get("mct_scale") is None:
        raise EnhanceError(
            f"{checkpoint}: the training pairs had different micro-CT up-sampling factors "
            f"({', '.join(map(str, rec['mct_scales']))}); pass --mct-scale with this input's "
            "factor (SEM pixels per micro-CT pixel)"
        )
    return int(rec.get("mct_scale") or 1)


def describe_normalization(
    mode: str, params: dict | None, lo: float | None, hi: float | None
) -> str:
    """One line saying which contrast mapping was applied (the provenance's ``description``)."""
    if mode == "none":
        return "none: input used as 8-bit grey levels"
    assert params is not None
    src = "the checkpoint's recorded" if mode == "from-checkpoint" else "the default"
    clahe = ", then CLAHE" if params.get("clahe") else ""
    return (
        f"{src} percentile stretch {params['p_low']}..{params['p_high']} "
        f"(black {lo:g}, white {hi:g}){clahe}"
    )


def input_fov(src: Source) -> tuple[np.ndarray | None, str]:
    """(mask, said) of the input's circular field of view, found on its first slice on the
    input's own grid and, for an up-sampled input, redrawn on the model's grid exactly as
    training did (:func:`rocksr.data.masks.sample_mask`)."""
    from rocksr.data.images import ImageError
    from rocksr.data.masks import sample_mask

    scaled = isinstance(src, ScaledSource)
    raw = src.inner.read(0) if scaled else src.read(0)
    factor = src.factor if scaled else 1
    try:
        mask, fov = sample_mask("auto_fov", raw, src.shape, factor, None, str(src.path))
    except ImageError:
        return None, "the whole image (no circular field of view found in the input)"
    cy, cx = fov["centre_yx"]
    said = f"its field of view (disc at y {cy:g}, x {cx:g}, radius {fov['radius_px']:g} px)"
    return mask, said


class Normalizer:
    """The contrast mapping applied to every input slice, decided before any model work.

    With ``from-checkpoint`` and training pairs whose percentiles were taken inside a circular
    field of view (every sample ``mask: auto_fov``), the input's field of view is found on its
    first slice (:func:`rocksr.data.masks.auto_fov`) and the black/white points are taken inside
    it; an input with no constant surround (already cropped inside its field of view) uses every
    pixel, and the record says which.  ``record``: what the provenance stores."""

    def __init__(self, mode: str, cfg: dict, ckpt_path: Path, src: Source) -> None:
        self.src = src
        self.params, self.mask, within = self._choose(mode, cfg, ckpt_path)
        self.lo = self.hi = self.limits_over = None
        if self.params is not None:
            self.lo, self.hi, self.limits_over = self._limits()
            self.limits_over += f"; percentiles within {within}"
        self.record = {
            "mode": mode,
            "method": None if self.params is None else "percentile",
            "params": self.params,
            "black": self.lo,
            "white": self.hi,
            "limits_over": self.limits_over,
            "description": describe_normalization(mode, self.params, self.lo, self.hi),
        }

    def _choose(
        self, mode: str, cfg: dict, ckpt_path: Path
    ) -> tuple[dict | None, np.ndarray | None, str]:
        """(stretch parameters or None, field-of-view mask or None, where the percentiles are
        taken) for ``mode``."""
        from rocksr.data.normalize import NORMALIZE_DEFAULTS

        src = self.src
        if mode == "from-checkpoint":
            record = read_normalization_record(cfg, ckpt_path)
            if record["within"] == "auto_fov":
                return (record["params"], *input_fov(src))
            within = "the whole image"
            if record["within"] == "masks":
                within = (
                    "the whole image (training took its percentiles inside mask images, which "
                    "do not carry over to a new slice: crop it to its valid area first)"
                )
                log.warning("%s: percentiles within %s", src.path, within)
            return record["params"], None, within
        if mode == "percentile":
            return dict(NORMALIZE_DEFAULTS), None, "the whole image"
        if src.dtype != np.uint8:
            raise EnhanceError(
                f"{src.path}: is {src.dtype}, but --normalize none needs an 8-bit image already "
                "normalized like the training data; use --normalize from-checkpoint or percentile"
            )
        return None, None, "the whole image"

    def _limits(self) -> tuple[float, float, str]:
        """(black, white, what they were taken over): over every selected slice of a stack,
        over the image (inside the field of view, when found) for a 2-D input."""
        from rocksr.data.normalize import stretch_limits

        src, pl, ph = self.src, self.params["p_low"], self.params["p_high"]
        if src.stack:
            return stack_limits(src.read, src.n, pl, ph, self.mask)
        first = src.read(0)
        lo, hi = stretch_limits(first if self.mask is None else first[self.mask], pl, ph)
        return lo, hi, "the image"

    def slice(self, i: int) -> np.ndarray:
        """Slice ``i`` of the input, normalized to uint8 (as the training micro-CT was)."""
        from rocksr.data.normalize import normalize_image

        a = self.src.read(i)
        if self.params is None:
            return a
        if not self.src.stack:
            return normalize_image(a, **self.params, mask=self.mask)
        return stretch_fixed(a, self.lo, self.hi, **self.params)
