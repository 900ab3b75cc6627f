"""Stage `enhance_figure`: a full-resolution crop of a whole enhanced slice beside its truth."""

from __future__ import annotations

import argparse

import numpy as np

from rocksr.config.enhance import Enhance
from rocksr.stages.args import named_paths, positive_int

COMMAND = "enhance-figure"
HELP = "micro-CT | enhanced images | SEM truth on one full-resolution crop"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--mct", required=True, help="normalized micro-CT of the slice")
    s.add_argument("--enhanced", nargs="+", required=True, metavar="NAME=TIFF")
    s.add_argument("--sem", required=True, help="normalized SEM of the slice (truth)")
    s.add_argument("--crop", type=positive_int, default=Enhance().figure_crop)
    s.add_argument(
        "--title",
        default=None,
        help="default: says whether the enhanced images are the whole slice or its centre",
    )
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.data.images import read_image
    from rocksr.data.registration import centre_crop
    from rocksr.figures.enhance_figure import enhance_figure

    enhanced = {name: read_image(path) for name, path in named_paths(a.enhanced).items()}
    # an enhanced image of the slice's central square only (`rocksr enhance --crop`): the
    # truth's same square first, so that every panel shows the same pixels
    shape = next(iter(enhanced.values())).shape

    def truth(img: np.ndarray) -> np.ndarray:
        if img.shape != shape:
            img = centre_crop(img, min(shape))
        return centre_crop(img, a.crop)

    mct = read_image(a.mct)
    panels = {"micro-CT": truth(mct)}
    panels.update({name: centre_crop(img, a.crop) for name, img in enhanced.items()})
    panels["SEM (truth)"] = truth(read_image(a.sem))
    title = a.title
    if title is None:
        whole = mct.shape
        title = (
            "whole-slice inference (rocksr enhance), central crop"
            if shape == whole
            else f"rocksr enhance on the slice's central {shape[0]}x{shape[1]} px (of "
            f"{whole[0]}x{whole[1]}; enhance.crop), tiles blended"
        )
    enhance_figure(panels, title, a.out)
