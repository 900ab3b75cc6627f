"""Stage `enhance_figure`: a full-resolution crop of a whole enhanced slice beside its truth."""

from __future__ import annotations

import argparse

from rocksr.config.enhance import Enhance
from rocksr.stages.args import named_paths, positive_int

COMMAND = "enhance-figure"
HELP = "micro-CT | enhanced images | SEM truth on one full-resolution crop"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--mct", required=True, help="normalized micro-CT of the slice")
    s.add_argument("--enhanced", nargs="+", required=True, metavar="NAME=TIFF")
    s.add_argument("--sem", required=True, help="normalized SEM of the slice (truth)")
    s.add_argument("--crop", type=positive_int, default=Enhance().figure_crop)
    s.add_argument("--title", default="whole-slice inference (rocksr enhance), central crop")
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.data.images import read_image
    from rocksr.evaluation.seam_study import centre_crop
    from rocksr.figures.enhance_figure import enhance_figure

    panels = {"micro-CT": centre_crop(read_image(a.mct), a.crop)}
    for name, path in named_paths(a.enhanced).items():
        panels[name] = centre_crop(read_image(path), a.crop)
    panels["SEM (truth)"] = centre_crop(read_image(a.sem), a.crop)
    enhance_figure(panels, a.title, a.out)
