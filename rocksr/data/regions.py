"""The ``regions`` split's search: three guillotine rectangles per sample, one per split.

Each sample's image is cut once straight across and one of the two pieces once more (a T or
three strips), at footprint starts; a view belongs to a rectangle only if its whole footprint
lies inside it. :func:`choose_regions` searches every such layout of every sample, under every
assignment of its pieces to the splits, and picks one layout per sample so that the study's
shares of kept views lie within ``SHARE_TOLERANCE`` of the fractions with the most views kept
(or else as close to the fractions as possible). :func:`rocksr.data.splits.assign_regions`
turns the chosen rectangles into split labels. numpy + pandas, no I/O.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

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
    n = pieces.shape[1]  # three pieces, one per split
    perms = np.array(list(itertools.permutations(range(n))))
    return pieces, perms, counts[:, perms].reshape(-1, n)


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
    _, first = _unique_rows(counts[order])
    idx = order[np.sort(first)]
    rects = pieces[idx // len(perms)][np.arange(len(idx))[:, None], perms[idx % len(perms)]]
    return rects, counts[idx]


def _unique_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(counts, axis=0, return_index=True)`` for non-negative integer ``counts``
    ``[row, split]``, about 10x faster on the millions of layouts of a large sample: each row
    as one int64, its counts the digits in base (largest count + 1), sorted as numbers (the
    rows' order). Rows too large for such keys, or negative, go through ``np.unique(axis=0)``."""
    base = int(counts.max(initial=0)) + 1
    if base ** counts.shape[1] >= 2**63 or counts.min(initial=0) < 0:
        return np.unique(counts, axis=0, return_index=True)
    keys = np.zeros(len(counts), dtype=np.int64)
    for col in counts.T:
        keys = keys * base + col.astype(np.int64)
    _, first = np.unique(keys, return_index=True)
    return counts[first], first


def choose_regions(manifest: pd.DataFrame, frac: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The chosen rectangles per sample, ``[split, (y0, y1, x0, x1)]`` with the splits in the
    order of ``frac`` (normalised fractions, one per split), in manifest order of the samples.

    Among all layouts (ties in seeded order) the samples' layouts are chosen so that the
    study's shares of kept views are within ``SHARE_TOLERANCE`` of ``frac`` with the most
    views kept, or else as close to ``frac`` as possible.
    """
    rng = np.random.default_rng(seed)
    samples = list(dict.fromkeys(manifest["sample"]))
    sample_col = manifest["sample"].to_numpy()
    several = len(samples) > 1
    options = [_sample_options(manifest.loc[sample_col == s], frac, rng, several) for s in samples]
    choice = _balance([counts for _, counts in options], frac)
    if sum(options[i][1][c].sum() for i, c in enumerate(choice)) == 0:
        raise ValueError("no tile footprint fits inside the image; use smaller tiles")
    return {s: rects[c] for s, (rects, _), c in zip(samples, options, choice, strict=True)}
