"""Command `simulate-mct`: a simulated micro-CT partner for a user's SEM image (no rule)."""

from __future__ import annotations

import argparse

from rocksr.stages.args import json_arg

COMMAND = "simulate-mct"
HELP = "simulate a micro-CT partner for an SEM image"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--sem", required=True, help="SEM image (TIFF/PNG)")
    s.add_argument("--page", type=int, default=None)
    s.add_argument("--out", required=True, help="simulated micro-CT (TIFF/PNG)")
    s.add_argument("--out-sem", default=None, help="also write the 8-bit SEM used")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--forward", type=json_arg, default={}, help="JSON forward-model parameters")


def run(a: argparse.Namespace) -> None:
    from rocksr.data.images import read_image
    from rocksr.data.normalize import normalize_image
    from rocksr.data.synthetic import simulate_mct
    from rocksr.files import write_image

    sem = read_image(a.sem, a.page)
    if sem.dtype != "uint8":
        sem = normalize_image(sem, 0.0, 100.0)
    mct = simulate_mct(sem, a.seed, **a.forward)
    write_image(a.out, mct)
    if a.out_sem:
        write_image(a.out_sem, sem)
