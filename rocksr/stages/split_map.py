"""Stage `split_map`: where the train/val/test tiles lie on each sample."""

from __future__ import annotations

import argparse

COMMAND = "split-map"
HELP = "map of the split's tile footprints per sample"


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--manifest", required=True)
    s.add_argument("--splits", required=True)
    s.add_argument("--dropped", help="dropped-tiles CSV of build-dataset")
    s.add_argument("--masks", nargs="+", help="valid-area mask images, one per sample in order")
    s.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> None:
    import pandas as pd

    from rocksr.data.masks import read_mask_image
    from rocksr.data.tilestore import read_dropped, read_manifest
    from rocksr.figures.split_map import split_map_figure

    manifest = read_manifest(a.manifest)
    shapes = manifest.drop_duplicates("sample").set_index("sample")
    samples = list(shapes.index)
    masks = None
    if a.masks:
        if len(a.masks) != len(samples):
            raise SystemExit(f"split-map: {len(samples)} samples but {len(a.masks)} masks")
        masks = {
            name: read_mask_image(
                path, (shapes.at[name, "image_height"], shapes.at[name, "image_width"])
            )
            for name, path in zip(samples, a.masks, strict=True)
        }
    dropped = read_dropped(a.dropped) if a.dropped else None
    split_map_figure(manifest, pd.read_csv(a.splits), a.out, masks=masks, dropped=dropped)
