"""Train/val/test assignment of the manifest's tiles.

Strategies:
- ``blocks`` (default, location-disjoint): each sample is cut into ``rows x cols`` rectangular
  blocks; whole blocks are assigned to splits so that tile counts approach the target fractions;
  a view belongs to a split only if its whole footprint lies in blocks of that split, otherwise
  it is ``excluded``. Footprints of different splits therefore never share a pixel.
- ``regions`` (location-disjoint, wastes little): each sample is cut into three rectangles by
  one straight cut and one more cut of one of the two pieces (a T or three strips), at footprint
  starts, one rectangle per split; a view is kept only if its whole footprint lies in its
  split's rectangle. The cuts are searched so that the study's shares of kept views lie within
  ``SHARE_TOLERANCE`` of the fractions with the most views kept (84 % at the study's geometry,
  against 72 % for ``blocks`` 3x3).
- ``random``: the study's way, each view drawn independently. Overlapping windows leak; kept to
  measure the leak.
- ``holdout_sample``: whole samples go to val/test by name, the rest to train.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pandas as pd

from rocksr.config.merge import section_defaults
from rocksr.config.split import Blocks

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


# ---- regions: three guillotine rectangles per sample -------------------------------------------

# within this distance of every asked share, a layout is judged by how many views it keeps
SHARE_TOLERANCE = 0.02
# passes of the per-sample balancing of study-wide totals
BALANCE_PASSES = 20


def _fp_table(sub: pd.DataFrame) -> pd.DataFrame:
    """Unique footprints of one sample with their number of views (column ``n``)."""
    cols = ["footprint_y0", "footprint_x0", "footprint_size"]
    return sub.groupby(cols, sort=True).size().rename("n").reset_index()


class _RectCounter:
    """Views whose footprint lies inside axis-aligned rectangles, by 2-D prefix sums."""

    def __init__(self, fps: pd.DataFrame) -> None:
        self.classes = []
        for fs, g in fps.groupby("footprint_size", sort=True):
            ys, yi = np.unique(g["footprint_y0"].to_numpy(), return_inverse=True)
            xs, xi = np.unique(g["footprint_x0"].to_numpy(), return_inverse=True)
            grid = np.zeros((len(ys) + 1, len(xs) + 1), dtype=np.int64)
            np.add.at(grid, (yi + 1, xi + 1), g["n"].to_numpy())
            self.classes.append((int(fs), ys, xs, grid.cumsum(0).cumsum(1)))

    def __call__(self, rects: np.ndarray) -> np.ndarray:
        """Kept views per rectangle ``[..., (y0, y1, x0, x1)]`` (half-open pixel bounds)."""
        y0, y1, x0, x1 = (rects[..., k] for k in range(4))
        total = np.zeros(y0.shape, dtype=np.int64)
        for fs, ys, xs, cum in self.classes:
            i0 = np.searchsorted(ys, y0, side="left")
            i1 = np.maximum(np.searchsorted(ys, y1 - fs, side="right"), i0)
            j0 = np.searchsorted(xs, x0, side="left")
            j1 = np.maximum(np.searchsorted(xs, x1 - fs, side="right"), j0)
            total += cum[i1, j1] - cum[i0, j1] - cum[i1, j0] + cum[i0, j0]
        return total


def _cuts(fps: pd.DataFrame, axis: str, length: int) -> np.ndarray:
    """Cut positions along an axis: the footprint starts and the image's two ends. A cut
    anywhere else keeps the same views after it as at the next start, and no more before it."""
    start = fps[f"footprint_{axis}0"].to_numpy()
    return np.unique(np.concatenate([[0, length], start]))


def _pieces_cut_first_along_y(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """Three rectangles ``(y0, y1, x0, x1)`` per layout: a cut at y = p, then one of the two
    pieces cut again across (at x = q) or along (three strips)."""
    p, q = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    z, hh, ww = np.zeros_like(p), np.full_like(p, h), np.full_like(p, w)
    top_cut = np.stack([np.stack(r, -1) for r in ((z, p, z, q), (z, p, q, ww), (p, hh, z, ww))], 1)
    bottom_cut = np.stack(
        [np.stack(r, -1) for r in ((z, p, z, ww), (p, hh, z, q), (p, hh, q, ww))], 1
    )
    a, b = (v.ravel() for v in np.meshgrid(ys, ys, indexing="ij"))
    a, b = a[a <= b], b[a <= b]
    z, ww, hh = np.zeros_like(a), np.full_like(a, w), np.full_like(a, h)
    strips = np.stack([np.stack(r, -1) for r in ((z, a, z, ww), (a, b, z, ww), (b, hh, z, ww))], 1)
    return np.concatenate([top_cut, bottom_cut, strips])


def _layouts(fps: pd.DataFrame, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every guillotine layout of three rectangles under every assignment of its pieces to the
    splits: (rectangles ``[layout, piece, (y0, y1, x0, x1)]``, assignments ``[perm, split]`` =
    piece index, kept views ``[layout * len(perms) + perm, split]``)."""
    ys, xs = _cuts(fps, "y", h), _cuts(fps, "x", w)
    along_y = _pieces_cut_first_along_y(ys, xs, h, w)
    along_x = _pieces_cut_first_along_y(xs, ys, w, h)[..., [2, 3, 0, 1]]
    pieces = np.concatenate([along_y, along_x])
    counts = _RectCounter(fps)(pieces)
    perms = np.array(list(itertools.permutations(range(len(SPLITS)))))
    return pieces, perms, counts[:, perms].reshape(-1, len(SPLITS))


def _region_keys(totals: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort keys, most significant first: how many splits with a non-zero fraction are empty;
    whether every share is within ``SHARE_TOLERANCE`` of its fraction; then, within, the most kept views discounted by the summed share deviation
    (kept * (1 - L1)), or, outside, the smallest worst deviation; then the fewest exclusions."""
    kept = totals.sum(-1)
    dev = np.abs(totals / np.maximum(kept, 1)[..., None] - frac)
    worst = np.where(kept > 0, dev.max(-1), np.inf)
    within = worst <= SHARE_TOLERANCE + 1e-12
    empty = np.sum((totals == 0) & (frac > 0), axis=-1)  # fewer empty wanted splits first
    return (empty, ~within, np.where(within, -kept * (1.0 - dev.sum(-1)), worst), -kept)


def _best(totals: np.ndarray, frac: np.ndarray) -> int:
    """Index of the best row of ``totals`` (the first one among equals)."""
    keys = _region_keys(totals, frac)
    return int(np.lexsort(tuple(reversed(keys)))[0])


def _better(a: np.ndarray, b: np.ndarray, frac: np.ndarray) -> bool:
    """Whether study totals ``a`` are strictly better than ``b``."""
    ka = tuple(float(k) for k in _region_keys(a, frac))
    kb = tuple(float(k) for k in _region_keys(b, frac))
    return ka < kb


def _balance(options: list[np.ndarray], frac: np.ndarray) -> list[int]:
    """One layout per sample so that the study's totals meet the fractions: from each start
    (each sample's own best layout; with several samples also whole samples dealt to the splits,
    :func:`_whole_sample_start`), each sample in turn re-chosen given the others until nothing
    improves; the better end wins (the first among equals)."""
    starts = [[_best(o, frac) for o in options]]
    if len(options) > 1:
        whole = _whole_sample_start(options, frac)
        if whole is not None:
            starts.append(whole)
    best_choice, best_total = None, None
    for start in starts:
        choice, total = _descend(options, frac, start)
        if best_total is None or _better(total, best_total, frac):
            best_choice, best_total = choice, total
    assert best_choice is not None
    return best_choice


def _descend(
    options: list[np.ndarray], frac: np.ndarray, start: list[int]
) -> tuple[list[int], np.ndarray]:
    """Coordinate descent from ``start``: (choice per sample, study totals)."""
    choice = list(start)
    total = sum(o[c] for o, c in zip(options, choice, strict=True))
    for _ in range(BALANCE_PASSES):
        changed = False
        for s, o in enumerate(options):
            rest = total - o[choice[s]]
            c = _best(rest + o, frac)
            if _better(rest + o[c], total, frac):
                choice[s], total, changed = c, rest + o[c], True
        if not changed:
            break
    return choice, total


def _whole_sample_start(options: list[np.ndarray], frac: np.ndarray) -> list[int] | None:
    """Each sample whole in one split (largest first, to the split furthest below its
    fraction), as layout indices; None if a sample has no such layout."""
    sizes = [int(o.sum(axis=1).max()) for o in options]
    total = np.zeros(len(frac))
    choice: list[int | None] = [None] * len(options)
    for s in sorted(range(len(options)), key=lambda i: -sizes[i]):
        target = frac * (total.sum() + sizes[s]) - total
        split = int(np.argmax(np.where(frac > 0, target, -np.inf)))
        rows = np.nonzero(options[s][:, split] == sizes[s])[0]
        if len(rows) == 0:
            return None
        choice[s] = int(rows[0])
        total[split] += sizes[s]
    return [int(c) for c in choice if c is not None]


def _sample_options(
    sub: pd.DataFrame, frac: np.ndarray, rng: np.random.Generator, whole_samples: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A sample's distinct layouts (one per distinct count vector, the first in seeded order) as
    (rectangles ``[layout, split, (y0, y1, x0, x1)]``, kept views ``[layout, split]``),
    preferring layouts that give every wanted split at least one view, or, with
    ``whole_samples`` (a study of several samples), that put the whole sample in one split."""
    h, w = int(sub["image_height"].iloc[0]), int(sub["image_width"].iloc[0])
    pieces, perms, counts = _layouts(_fp_table(sub), h, w)
    order = rng.permutation(len(counts))
    every = np.all(counts[order][:, frac > 0] > 0, axis=1)
    if every.any():
        # with several samples, a whole sample in one split (nothing excluded) is an option too
        whole = counts[order].max(axis=1) == len(sub) if whole_samples else False
        order = order[every | whole]
    _, first = np.unique(counts[order], axis=0, return_index=True)
    idx = order[np.sort(first)]
    rects = pieces[idx // len(perms)][np.arange(len(idx))[:, None], perms[idx % len(perms)]]
    return rects, counts[idx]


def assign_regions(
    manifest: pd.DataFrame, fractions: dict[str, float], seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Location-disjoint split labels per view from three rectangles per sample, and the chosen
    rectangles per sample (``[split, (y0, y1, x0, x1)]`` in ``SPLITS`` order).

    Each sample's image is cut once straight across and one of the two pieces once more, at
    footprint starts; the three rectangles go to train/val/test. A view belongs to a split only
    if its whole footprint lies in that split's rectangle, otherwise it is ``excluded``. Among
    all such layouts (ties in seeded order) the samples' layouts are chosen so that the study's
    shares of kept views are within ``SHARE_TOLERANCE`` of the fractions with the most views
    kept, or else as close to the fractions as possible.
    """
    frac = _normalised_fractions(fractions)
    rng = np.random.default_rng(seed)
    samples = list(dict.fromkeys(manifest["sample"]))
    sample_col = manifest["sample"].to_numpy()
    several = len(samples) > 1
    options = [_sample_options(manifest.loc[sample_col == s], frac, rng, several) for s in samples]
    choice = _balance([counts for _, counts in options], frac)
    if sum(options[i][1][c].sum() for i, c in enumerate(choice)) == 0:
        raise ValueError("no tile footprint fits inside the image; use smaller tiles")
    labels = np.full(len(manifest), "excluded", dtype=object)
    fy0, fx0, fs = (
        manifest[k].to_numpy() for k in ("footprint_y0", "footprint_x0", "footprint_size")
    )
    chosen = {}
    for s, (rects, _), c in zip(samples, options, choice, strict=True):
        chosen[s] = rects[c]
        for name, (y0, y1, x0, x1) in zip(SPLITS, rects[c], strict=True):
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


def footprint_masks(
    manifest: pd.DataFrame, labels: np.ndarray, sample: str
) -> dict[str, np.ndarray]:
    """Per split, the boolean union of its views' footprints on one sample's image."""
    rows = manifest["sample"].to_numpy() == sample
    sub = manifest.loc[rows]
    h, w = int(sub["image_height"].iloc[0]), int(sub["image_width"].iloc[0])
    out = {}
    for name in SPLITS:
        sel = sub.loc[labels[rows] == name]
        diff = np.zeros((h + 1, w + 1), dtype=np.int32)
        for fy0, fx0, fs in (
            sel[["footprint_y0", "footprint_x0", "footprint_size"]]
            .drop_duplicates()
            .itertuples(index=False)
        ):
            diff[fy0, fx0] += 1
            diff[fy0, fx0 + fs] -= 1
            diff[fy0 + fs, fx0] -= 1
            diff[fy0 + fs, fx0 + fs] += 1
        out[name] = np.cumsum(np.cumsum(diff, 0), 1)[:h, :w] > 0
    return out


def leakage(manifest: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Shared footprint pixels between each pair of splits, per sample (0 means disjoint)."""
    labels = splits.set_index("tile_id").loc[manifest["tile_id"], "split"].to_numpy()
    records = []
    for sample in dict.fromkeys(manifest["sample"]):
        masks = footprint_masks(manifest, labels, sample)
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1 :]:
                records.append(
                    {
                        "sample": sample,
                        "pair": f"{a}/{b}",
                        "shared_pixels": int((masks[a] & masks[b]).sum()),
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
