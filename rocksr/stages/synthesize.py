"""Stage `synthesize`: the built-in synthetic paired sample (micro-CT, SEM)."""

from __future__ import annotations

import argparse

from rocksr.stages.args import json_arg

COMMAND = "synthesize"
HELP = "generate the built-in synthetic paired sample"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--spec", type=json_arg, required=True, help="JSON: height, width, seed, rock, forward"
    )
    s.add_argument("--out-mct", required=True)
    s.add_argument("--out-sem", required=True)


def run(a: argparse.Namespace) -> None:
    from rocksr.data.synthetic import generate_pair
    from rocksr.files import write_image

    spec = dict(a.spec)
    mct, sem = generate_pair(
        int(spec["height"]),
        int(spec["width"]),
        int(spec.get("seed", 0)),
        rock=spec.get("rock") or {},
        forward=spec.get("forward") or {},
    )
    write_image(a.out_sem, sem)
    write_image(a.out_mct, mct)
