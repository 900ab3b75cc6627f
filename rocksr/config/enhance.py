"""Defaults of the ``enhance`` section: whole-slice inference and its seam study."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rocksr.config.merge import ConfigError

STACK_KEYS = ("name", "path", "pages")


@dataclass
class Enhance:
    """``rocksr enhance`` on each sample's whole micro-CT, as the `enhance` rule runs it.

    ``overlap`` and ``window`` None = the model kind's own defaults (its registry entry:
    half a tile and a Gaussian window; the cGAN three quarters and a cosine window, which keep
    its whole slices free of banding at the tile period, docs/evaluation.md); the sampler and
    its steps are ``evaluate.sampler/steps``.
    """

    enabled: bool = True
    overlap: int | None = None
    window: str | None = None
    fuse: str = "step"
    batch_size: int = 16
    seed: int = 0
    seam_study: bool = True  # the seam study (rule seam_study) on the first sample
    seam_crop: int = 512  # side of the crop the seam study enhances in every mode
    figure_crop: int = 384  # side of the full-resolution crop in figures/enhance.png
    # the `enhance` rule enhances only the central crop x crop px of each sample's slice (None:
    # the whole slice; at least figure_crop); stacks are always enhanced whole
    crop: int | None = None
    # micro-CT stacks enhanced with every model (rule stack_enhance), each as evaluate.shards
    # jobs over its pages: [{name, path, pages}] (pages "a-b", 0-based, optional)
    stacks: list = field(default_factory=list)


def stack_entries(stacks: object, what: str = "enhance.stacks") -> dict[str, dict]:
    """``enhance.stacks`` as ``{name: {"name", "path", "pages"}}``; refuses (:class:`ConfigError`,
    naming the entry) anything but a list of entries with a unique file-name-safe ``name``, the
    ``path`` of an existing file or Zarr folder, and ``pages`` absent or like ``100-199``."""
    if not isinstance(stacks, list):
        raise ConfigError(f"{what}: expected a list of {{name, path, pages}}, got {stacks!r}")
    out: dict[str, dict] = {}
    for k, entry in enumerate(stacks):
        where = f"{what}[{k}]"
        if not isinstance(entry, dict) or not {"name", "path"} <= set(entry):
            raise ConfigError(f"{where}: expected {{name, path, pages}}, got {entry!r}")
        unknown = sorted(set(entry) - set(STACK_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {', '.join(STACK_KEYS)}")
        name, path, pages = str(entry["name"]), Path(str(entry["path"])), entry.get("pages")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name in out:
            raise ConfigError(f"{where}: name {name!r} is not a unique file-name-safe name")
        if not path.exists():
            raise ConfigError(f"{where}: {path} does not exist")
        if pages is not None and not re.fullmatch(r"\d+(-\d+)?", str(pages)):
            raise ConfigError(f"{where}: pages {pages!r} is not a range like 100-199")
        out[name] = {
            "name": name,
            "path": str(path),
            "pages": None if pages is None else str(pages),
        }
    return out
