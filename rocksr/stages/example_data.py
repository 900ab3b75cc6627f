"""Command `example-data`: write the worked example's two folders of images (no rule)."""

from __future__ import annotations

import argparse
import json

COMMAND = "example-data"
HELP = "write example pairs: 16-bit micro-CT at 1/4 resolution with a circular FOV, 8-bit SEM"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--out", default="data/example", help="folder to write mct/ and sem/ into")
    s.add_argument("--seed", type=int, default=11)
    s.add_argument(
        "--size",
        type=int,
        default=None,
        help="SEM side in pixels (a multiple of 4; default 768)",
    )


def run(a: argparse.Namespace) -> None:
    from rocksr.data.example_pairs import EXAMPLE_SIZE, write_example_pairs

    for pair in write_example_pairs(a.out, size=a.size or EXAMPLE_SIZE, seed=a.seed):
        print(json.dumps(pair))
