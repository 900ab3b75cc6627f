"""Stage `figure1`: a base tile and its rotated views (the study's Figure 1)."""

from __future__ import annotations

import argparse
import os

import numpy as np

from rocksr.data.tilestore import (
    open_tiles,
    read_manifest,
)


def figure1_from_store(
    store: str | os.PathLike,
    manifest_path: str | os.PathLike,
    out_png: str | os.PathLike,
    n_rotated: int = 2,
) -> None:
    """Figure 1: the most central base tile's unrotated view and two rotated views, from the store."""
    from rocksr.figures.figure1 import figure1

    group = open_tiles(store)
    manifest = read_manifest(manifest_path)
    rotated = manifest[manifest["view"] == "rotated"]
    pool = rotated if len(rotated) else manifest
    first = pool["sample"].iloc[0]
    pool = pool[pool["sample"] == first]
    cy = pool["image_height"].iloc[0] / 2
    cx = pool["image_width"].iloc[0] / 2
    size = int(group.attrs["tile_size"])
    d = (pool["y0"] + size / 2 - cy) ** 2 + (pool["x0"] + size / 2 - cx) ** 2
    r, c = pool.loc[d.idxmin(), ["grid_row", "grid_col"]]
    views = pool[(pool["grid_row"] == r) & (pool["grid_col"] == c)]
    non_zero = views[views["angle"] % 90 != 0]
    chosen = [views[views["angle"] == 0]["tile_id"].iloc[0]] if (views["angle"] == 0).any() else []
    pick = non_zero if len(non_zero) else views[views["angle"] != 0]
    if len(pick):
        idx = np.linspace(0, len(pick) - 1, min(n_rotated, len(pick))).round().astype(int)
        chosen += list(pick["tile_id"].iloc[idx])
    angles = [float(manifest.loc[t, "angle"]) for t in chosen]
    tiles = {k: np.stack([group[k][int(t)] for t in chosen]) for k in ("mct", "sem")}
    y0, x0 = int(views["y0"].iloc[0]), int(views["x0"].iloc[0])
    figure1(tiles, angles, f"{first}: base tile at (y={y0}, x={x0}) and rotated views", out_png)


COMMAND = "figure1"
HELP = "Figure 1: a base tile and rotated views"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--store", required=True)
    s.add_argument("--manifest", required=True)
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    figure1_from_store(a.store, a.manifest, a.out)
