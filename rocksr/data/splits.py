"""Train/val/test assignment of the manifest's tiles, and what a split table says.

Strategies (:func:`make_splits`):
- ``regions`` (default; location-disjoint, wastes little): each sample is cut into three
  rectangles by one straight cut and one more cut of one of the two pieces (a T or three
  strips), at footprint starts, one rectangle per split; a view is kept only if its whole
  footprint lies in its split's rectangle. The cuts are searched (:mod:`rocksr.data.regions`) so
  that the study's shares of kept views lie within ``SHARE_TOLERANCE`` of the fractions with the
  most views kept (84 % at the study's geometry, against 72 % for ``blocks`` 3x3).
- ``blocks`` (location-disjoint): each sample is cut into ``rows x cols`` rectangular
  blocks; whole blocks are assigned to splits so that tile counts approach the target fractions;
  a view belongs to a split only if its whole footprint lies in blocks of that split, otherwise
  it is ``excluded``. Footprints of different splits therefore never share a pixel.
- ``random``: the study's way, each view drawn independently. Overlapping windows leak; kept to
  measure the leak.
- ``holdout_sample``: whole samples go to val/test by name, the rest to train.

Then the checks and readers of a split table: footprint unions and their leakage, counts per
split, and a split's tile ids.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from rocksr.config.merge import section_defaults
from rocksr.config.split import Blocks
from rocksr.data.regions import choose_regions

# a split that keeps fewer than this fraction of the views warns (the rest are `excluded`)
EXCLUDED_WARN_FRACTION = 0.5

SPLITS = ("train", "val", "test")
# every label of a splits table: views of no split (straddling split borders) are `excluded`
SPLIT_LABELS = (*SPLITS, "excluded")


STRATEGIES = ("blocks", "regions", "random", "holdout_sample")


def _normalised_fractions(fractions: dict[str, float]) -> np.ndarray:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split names in fractions: {sorted(unknown)}")
    f = np.array([float(fractions.get(s, 0.0)) for s in SPLITS])
    if np.any(f < 0) or f.sum() <= 0:
        raise ValueError(f"split fractions must be >= 0 and not all zero, got {fractions}")
    return f / f.sum()


def block_edges(length: int, n: int) -> np.ndarray:
    """Pixel boundaries of ``n`` near-equal blocks along an axis of ``length`` pixels."""
    if n < 1 or n > length:
        raise ValueError(f"cannot cut {length} px into {n} blocks")
    return np.round(np.linspace(0, length, n + 1)).astype(np.int64)


def _coverage(manifest: pd.DataFrame, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(footprint index per view, block-coverage matrix per unique footprint, n_blocks)."""
    keys = manifest[["sample", "footprint_y0", "footprint_x0", "footprint_size"]]
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys))
    samples = list(dict.fromkeys(manifest["sample"]))
    sample_index = {s: i for i, s in enumerate(samples)}
    dims = manifest.groupby("sample", sort=False)[["image_height", "image_width"]].first()
    n_blocks = len(samples) * rows * cols
    cover = np.zeros((len(uniques), n_blocks), dtype=bool)
    for u, (sample, fy0, fx0, fs) in enumerate(uniques):
        h, w = dims.loc[sample]
        ye, xe = block_edges(int(h), rows), block_edges(int(w), cols)
        r0 = np.searchsorted(ye, fy0, side="right") - 1
        r1 = np.searchsorted(ye, fy0 + fs - 1, side="right") - 1
        c0 = np.searchsorted(xe, fx0, side="right") - 1
        c1 = np.searchsorted(xe, fx0 + fs - 1, side="right") - 1
        base = sample_index[sample] * rows * cols
        for r in range(r0, r1 + 1):
            cover[u, base + r * cols + c0 : base + r * cols + c1 + 1] = True
    return codes, cover, n_blocks


def _blocks_per_split(n_blocks: int, frac: np.ndarray) -> np.ndarray:
    """Integer block counts per split near ``frac * n_blocks``, at least one per wanted split."""
    counts = np.floor(frac * n_blocks).astype(int)
    counts[(frac > 0) & (counts == 0)] = 1
    while counts.sum() > n_blocks:
        counts[np.argmax(counts)] -= 1
    while counts.sum() < n_blocks:
        counts[np.argmax(frac * n_blocks - counts)] += 1
    if np.any((frac > 0) & (counts == 0)):
        raise ValueError(
            f"{n_blocks} blocks are too few for {int((frac > 0).sum())} non-empty splits; "
            "raise split.blocks rows/cols"
        )
    return counts


def assign_blocks(
    manifest: pd.DataFrame,
    fractions: dict[str, float],
    rows: int,
    cols: int,
    seed: int,
    candidates: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Location-disjoint split labels per view, and the chosen block -> split assignment.

    Among ``candidates`` seeded random assignments with block counts proportional to the
    fractions, keep the one whose realised tile fractions are closest (L1) to the targets,
    breaking ties by fewer excluded views.
    """
    frac = _normalised_fractions(fractions)
    codes, cover, n_blocks = _coverage(manifest, rows, cols)
    views_per_fp = np.bincount(codes, minlength=cover.shape[0])
    n_cover = cover.sum(1)
    counts = _blocks_per_split(n_blocks, frac)
    base = np.repeat(np.arange(len(SPLITS)), counts)
    rng = np.random.default_rng(seed)
    cover_f = cover.astype(np.float32)
    assigns = np.stack([rng.permutation(base) for _ in range(max(1, candidates))])
    eye = np.eye(len(SPLITS), dtype=np.float32)
    best: tuple[float, int, np.ndarray] | None = None
    batch = max(1, 4_000_000 // max(1, cover.size))
    for start in range(0, len(assigns), batch):
        chunk = assigns[start : start + batch]
        # covered[c, f, s]: how many of footprint f's blocks candidate c gives to split s
        covered = np.einsum("fb,cbs->cfs", cover_f, eye[chunk], optimize=True)
        inside = covered == n_cover[None, :, None]
        n_split = (inside * views_per_fp[None, :, None]).sum(1)
        total = n_split.sum(1)
        score = np.abs(n_split / np.maximum(total, 1)[:, None] - frac[None, :]).sum(1)
        score[total == 0] = np.inf
        excluded = views_per_fp.sum() - total
        for c in np.lexsort((excluded, score)):
            if np.isfinite(score[c]) and (best is None or (score[c], excluded[c]) < best[:2]):
                best = (float(score[c]), int(excluded[c]), chunk[c])
            break
    if best is None:
        raise ValueError(
            "no tile footprint fits inside a single block; use fewer split blocks (larger "
            "blocks) or smaller tiles"
        )
    assign = best[2]
    onehot = np.eye(len(SPLITS), dtype=bool)[assign]
    fp_split = np.full(cover.shape[0], "excluded", dtype=object)
    for s, name in enumerate(SPLITS):
        fp_split[(cover & ~onehot[:, s][None, :]).sum(1) == 0] = name
    return fp_split[codes].astype(str), assign


def assign_random(n: int, fractions: dict[str, float], seed: int) -> np.ndarray:
    """The study's split: views shuffled and cut by the fractions (leaks across locations)."""
    frac = _normalised_fractions(fractions)
    cuts = np.round(np.cumsum(frac) * n).astype(int)
    labels = np.empty(n, dtype=object)
    order = np.random.default_rng(seed).permutation(n)
    start = 0
    for name, stop in zip(SPLITS, cuts, strict=True):
        labels[order[start:stop]] = name
        start = stop
    return labels.astype(str)


def assign_holdout(manifest: pd.DataFrame, holdout: dict[str, list[str]]) -> np.ndarray:
    """Whole samples to val/test by name; every other sample to train."""
    known = set(manifest["sample"])
    labels = np.full(len(manifest), "train", dtype=object)
    seen: dict[str, str] = {}
    for split in ("val", "test"):
        for name in holdout.get(split, []) or []:
            if name not in known:
                raise ValueError(f"holdout sample {name!r} is not in the manifest {sorted(known)}")
            if name in seen:
                raise ValueError(f"sample {name!r} is held out for both {seen[name]} and {split}")
            seen[name] = split
            labels[(manifest["sample"] == name).to_numpy()] = split
    return labels.astype(str)


def assign_regions(
    manifest: pd.DataFrame, fractions: dict[str, float], seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Location-disjoint split labels per view from three rectangles per sample, and the chosen
    rectangles per sample (``[split, (y0, y1, x0, x1)]`` in ``SPLITS`` order).

    Each sample's image is cut once straight across and one of the two pieces once more, at
    footprint starts; the three rectangles go to train/val/test. A view belongs to a split only
    if its whole footprint lies in that split's rectangle, otherwise it is ``excluded``. The
    layouts are searched by :func:`rocksr.data.regions.choose_regions`.
    """
    chosen = choose_regions(manifest, _normalised_fractions(fractions), seed)
    labels = np.full(len(manifest), "excluded", dtype=object)
    sample_col = manifest["sample"].to_numpy()
    fy0, fx0, fs = (
        manifest[k].to_numpy() for k in ("footprint_y0", "footprint_x0", "footprint_size")
    )
    for s, rects in chosen.items():
        for name, (y0, y1, x0, x1) in zip(SPLITS, rects, strict=True):
            inside = (sample_col == s) & (fy0 >= y0) & (fy0 + fs <= y1)
            labels[inside & (fx0 >= x0) & (fx0 + fs <= x1)] = name
    return labels.astype(str), chosen


def make_splits(
    manifest: pd.DataFrame,
    strategy: str,
    fractions: dict[str, float],
    seed: int,
    blocks: dict[str, int] | None = None,
    holdout: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Split table keyed by ``tile_id`` with column ``split``."""
    if strategy == "blocks":
        b = blocks or section_defaults(Blocks)
        labels, _ = assign_blocks(manifest, fractions, int(b["rows"]), int(b["cols"]), seed)
    elif strategy == "regions":
        labels, _ = assign_regions(manifest, fractions, seed)
    elif strategy == "random":
        labels = assign_random(len(manifest), fractions, seed)
    elif strategy == "holdout_sample":
        labels = assign_holdout(manifest, holdout or {})
    else:
        raise ValueError(f"unknown split strategy {strategy!r}; expected one of {STRATEGIES}")
    return pd.DataFrame({"tile_id": manifest["tile_id"].to_numpy(), "split": labels})


def _footprint_cells(
    manifest: pd.DataFrame, labels: np.ndarray, sample: str
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Per split, the union of its views' footprints on one sample's image on the grid the
    footprints' edges cut it into: (row edges ``ys``, column edges ``xs``, boolean
    ``[len(ys) - 1, len(xs) - 1]`` per split); cell (i, j) is the pixels
    ``[ys[i], ys[i + 1]) x [xs[j], xs[j + 1])``. Thousands of views make a grid of a few hundred
    cells a side instead of the image's millions of pixels."""
    rows = manifest["sample"].to_numpy() == sample
    sub = manifest.loc[rows, ["footprint_y0", "footprint_x0", "footprint_size"]]
    first = int(np.flatnonzero(rows)[0])
    h, w = (int(manifest[c].iat[first]) for c in ("image_height", "image_width"))
    fy, fx, fs = (sub[c].to_numpy(dtype=np.int64) for c in sub.columns)
    if len(fy) and (min(fy.min(), fx.min()) < 0 or (fy + fs).max() > h or (fx + fs).max() > w):
        raise ValueError(f"sample {sample!r}: a view's footprint lies outside its {h}x{w} image")
    ys = np.unique(np.concatenate([[0, h], fy, fy + fs]))
    xs = np.unique(np.concatenate([[0, w], fx, fx + fs]))
    iy0, iy1 = np.searchsorted(ys, fy), np.searchsorted(ys, fy + fs)
    ix0, ix1 = np.searchsorted(xs, fx), np.searchsorted(xs, fx + fs)
    split_of = labels[rows]
    out = {}
    for name in SPLITS:
        sel = split_of == name
        diff = np.zeros((len(ys), len(xs)), dtype=np.int64)
        np.add.at(diff, (iy0[sel], ix0[sel]), 1)
        np.add.at(diff, (iy0[sel], ix1[sel]), -1)
        np.add.at(diff, (iy1[sel], ix0[sel]), -1)
        np.add.at(diff, (iy1[sel], ix1[sel]), 1)
        out[name] = np.cumsum(np.cumsum(diff, 0), 1)[:-1, :-1] > 0
    return ys, xs, out


def footprint_masks(
    manifest: pd.DataFrame, labels: np.ndarray, sample: str
) -> dict[str, np.ndarray]:
    """Per split, the boolean union of its views' footprints on one sample's image."""
    ys, xs, cells = _footprint_cells(manifest, labels, sample)
    dy, dx = np.diff(ys), np.diff(xs)  # the cells' sizes: they tile the whole image
    return {n: np.repeat(np.repeat(m, dy, 0), dx, 1) for n, m in cells.items()}


def leakage(manifest: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Shared footprint pixels between each pair of splits, per sample (0 means disjoint)."""
    labels = splits.set_index("tile_id").loc[manifest["tile_id"], "split"].to_numpy()
    records = []
    for sample in dict.fromkeys(manifest["sample"]):
        ys, xs, cells = _footprint_cells(manifest, labels, sample)
        area = np.outer(np.diff(ys), np.diff(xs))
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1 :]:
                records.append(
                    {
                        "sample": sample,
                        "pair": f"{a}/{b}",
                        "shared_pixels": int(area[cells[a] & cells[b]].sum()),
                    }
                )
    return pd.DataFrame(records)


def split_counts(
    manifest: pd.DataFrame, splits: pd.DataFrame, dropped: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Views, base tiles and fraction of assigned views per split (``excluded`` included), then
    one row per reason in the ``dropped`` tiles table (base tiles never made into views, e.g.
    ``outside_mask``; views empty)."""
    m = manifest.merge(splits, on="tile_id")
    assigned = (m["split"] != "excluded").sum()
    rows = []
    for name in (*SPLITS, "excluded"):
        sel = m[m["split"] == name]
        rows.append(
            {
                "split": name,
                "views": len(sel),
                "base_tiles": len(sel.drop_duplicates(["sample", "grid_row", "grid_col"])),
                "fraction_of_assigned": (len(sel) / assigned)
                if name != "excluded" and assigned
                else float("nan"),
            }
        )
    if dropped is not None:
        for reason, n in dropped["reason"].value_counts().sort_index().items():
            rows.append(
                {
                    "split": f"dropped: {reason}",
                    "views": pd.NA,
                    "base_tiles": int(n),
                    "fraction_of_assigned": float("nan"),
                }
            )
    return pd.DataFrame(rows)


def split_tile_ids(
    splits: str | os.PathLike | pd.DataFrame, split: str = "test", *, allow_empty: bool = False
) -> np.ndarray:
    """Ascending tile_ids of ``split`` (train, val, test or excluded) from a splits CSV or
    DataFrame (columns tile_id, split); an empty split is an error unless ``allow_empty``."""
    if split not in SPLIT_LABELS:
        raise ValueError(f"unknown split {split!r} (one of {SPLIT_LABELS})")
    if not isinstance(splits, pd.DataFrame) and not os.path.isfile(splits):
        raise ValueError(f"{splits}: split table does not exist")
    df = pd.read_csv(splits) if not isinstance(splits, pd.DataFrame) else splits
    where = "splits table" if isinstance(splits, pd.DataFrame) else f"{splits}: splits table"
    missing = {"tile_id", "split"} - set(df.columns)
    if missing:
        raise ValueError(f"{where} lacks columns {sorted(missing)}")
    ids = df.loc[df["split"] == split, "tile_id"].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{where} lists a tile_id twice in split {split!r}")
    if ids.size == 0 and not allow_empty:
        raise ValueError(f"{where} has no {split!r} tiles")
    return np.sort(ids)


def limit_test_views(splits: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The split table evaluation reads: ``splits`` with at most ``limit`` test views, spread
    evenly over the test views in ``tile_id`` order (so over locations and angles); the other
    test views become ``excluded`` (in no split). ``limit`` None keeps every test view; train
    and val are never touched."""
    out = splits.copy()
    if limit is None:
        return out
    if int(limit) < 1:
        raise ValueError(f"evaluate.test_views must be >= 1 or null, got {limit}")
    test = np.sort(out.loc[out["split"] == "test", "tile_id"].to_numpy(np.int64))
    if test.size <= int(limit):
        return out
    keep = test[np.unique(np.linspace(0, test.size - 1, int(limit)).round().astype(np.int64))]
    dropped = (out["split"] == "test") & ~out["tile_id"].isin(keep)
    out.loc[dropped, "split"] = "excluded"
    return out
