"""The values of a sample's ``mask`` setting: a mode (``none``, ``auto_fov``) or a mask image.

Only names and paths, no images: the sample sheets (:mod:`rocksr.config.samples`), the checks
before any job and the workflow's input functions ask here whether a value is valid and whether
it names a file; :mod:`rocksr.data.masks` applies it. Imports ``rocksr.config.merge`` and, inside
:func:`mask_spec_problem`, the image suffixes of :mod:`rocksr.files` (no numpy on import).
"""

from __future__ import annotations

import os

from rocksr.config.merge import suggest

MASK_MODES = ("none", "auto_fov")


def mask_spec_problem(spec: str) -> str | None:
    """Why a ``mask`` value is neither a mode nor an image path (None if it is one of them);
    a word like ``autofov`` gets the mode it is closest to."""
    from rocksr.files import _PNG_SUFFIXES, _TIFF_SUFFIXES

    if spec in MASK_MODES or os.path.splitext(spec)[1].lower() in _TIFF_SUFFIXES | _PNG_SUFFIXES:
        return None
    return (
        f"mask {spec!r} is neither {' nor '.join(MASK_MODES)} nor a mask image "
        f"(.tif, .tiff, .png){suggest(spec.lower().replace('-', '_'), MASK_MODES)}"
    )


def is_mask_path(spec: str | None) -> bool:
    """Whether a ``mask`` value names an image file (anything but ``none`` / ``auto_fov``)."""
    return bool(spec) and spec not in MASK_MODES
