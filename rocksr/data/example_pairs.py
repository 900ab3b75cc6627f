"""The worked real-data example's input: "two folders of images" made by rocksr itself.

Real pairs rarely arrive ready: the micro-CT has a coarser pixel than the SEM, is stored as 16-bit
TIFF, and shows the reconstruction's circular field of view with a constant (zero) surround,
while the SEM is an 8-bit PNG. :func:`write_example_pairs` writes such a folder from the built-in
synthetic rock (:func:`rocksr.data.synthetic.generate_pair`), so that ``configs/example_pairs.tsv``
takes it to Table 1 with ``mct_scale: auto`` and ``mask: auto_fov`` and no hand work:

* ``<out>/sem/<name>.png``: the SEM, 8-bit, ``size x size``;
* ``<out>/mct/<name>.tif``: the micro-CT block-averaged by ``factor`` (pixel ``i`` covers SEM
  pixels ``factor*i .. factor*i + factor - 1``), mapped to 16 bits (``1000 + 200 * grey``), and
  set to 0 outside a centred disc of radius ``fov_fraction`` of half the side.

Pure apart from the file writing; deterministic by seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rocksr.data.masks import disc

EXAMPLE_NAMES = ("rock_a", "rock_b", "rock_c")
EXAMPLE_SIZE = 768  # SEM pixels
EXAMPLE_FACTOR = 4  # SEM pixels per micro-CT pixel
EXAMPLE_FOV = 0.96  # FOV radius / half the micro-CT side


def coarse_fov_mct(
    mct: np.ndarray, factor: int, fov_fraction: float = EXAMPLE_FOV
) -> tuple[np.ndarray, dict]:
    """(16-bit micro-CT at ``1/factor`` resolution with a zero surround, its FOV disc
    ``{"centre_yx", "radius_px"}`` on the coarse grid) from an 8-bit micro-CT on the SEM grid."""
    h, w = mct.shape
    if h % factor or w % factor:
        raise ValueError(f"{h}x{w} is not divisible by the factor {factor}")
    coarse = mct.reshape(h // factor, factor, w // factor, factor).astype(np.float64).mean((1, 3))
    out = np.rint(1000.0 + 200.0 * coarse).astype(np.uint16)
    centre = ((coarse.shape[0] - 1) / 2, (coarse.shape[1] - 1) / 2)
    radius = fov_fraction * min(coarse.shape) / 2
    out[~disc(coarse.shape, centre, radius)] = 0
    return out, {"centre_yx": list(centre), "radius_px": radius}


def write_example_pairs(
    out: str | os.PathLike,
    names: tuple[str, ...] = EXAMPLE_NAMES,
    size: int = EXAMPLE_SIZE,
    factor: int = EXAMPLE_FACTOR,
    seed: int = 11,
) -> list[dict]:
    """Write the example folders under ``out`` (see the module docstring); returns one
    ``{name, mct, sem, fov}`` per pair (paths as written)."""
    from rocksr.data.synthetic import generate_pair
    from rocksr.files import write_image

    folder = Path(out)
    written = []
    for i, name in enumerate(names):
        mct, sem = generate_pair(
            size,
            size,
            seed + i,
            rock={"grain_radius_px": 22},
            forward={"partial_volume_factor": factor},
        )
        coarse, fov = coarse_fov_mct(mct, factor)
        paths = {"mct": folder / "mct" / f"{name}.tif", "sem": folder / "sem" / f"{name}.png"}
        for p in paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        write_image(paths["sem"], sem)
        write_image(paths["mct"], coarse)
        written.append({"name": name, **{k: str(v) for k, v in paths.items()}, "fov": fov})
    return written
