"""Rock metrics of the pore phase: threshold, bimodality check, S2(r), chord lengths, distances.

Pure numpy / scipy / scikit-image functions, no I/O.  Definitions chosen (docs/evaluation.md quotes them):

* **Pore phase.**  Pores are the dark phase of back-scattered SEM.  A pixel of a uint8 image
  ``x`` is pore when ``x / 255 <= threshold`` with ``threshold`` on the [0, 1] scale, exactly the
  rule of :func:`rocksr.evaluation.metrics.porosity` (:func:`pore_mask`; the two always agree).
  Porosity is the pore fraction of the tile.
* **Threshold** (:func:`pore_threshold`): a value the user fixes per sample wins; otherwise
  Otsu's method on a 256-bin grey histogram (normally the pooled train-split ground-truth SEM,
  :func:`rocksr.evaluation.metrics.otsu_threshold_from_histogram`; pixels ``<= t`` are pore).
  The valley of :func:`bimodality` is a diagnostic, not offered as a threshold: on the
  synthetic SEM the floor between the pore and grain modes is flat, so its lowest bin moves
  between grey ~35 and ~90 from seed to seed.
* **Bimodality** (:func:`bimodality`): the histogram is smoothed with a Gaussian of
  ``smooth_sigma = 2`` grey levels (``mode="reflect"``) and split at the Otsu threshold ``t`` of
  the raw histogram.  The dark peak ``p1`` is the highest smoothed bin in ``[0, t]``, the bright
  peak ``p2`` the highest in ``(t, 255]``, the valley ``v`` the lowest smoothed bin in
  ``[p1, p2]``.  The histogram has a clear pore mode when both hold:
  valley depth ratio ``h(v) / min(h(p1), h(p2)) <= max_valley_ratio = 0.5`` (a dark side that is
  only the shoulder of one mode has its "peak" at ``t`` itself and a ratio near 1), and the pore
  mode mass (fraction of pixels with grey ``<= v``) ``>= min_pore_fraction = 0.01``.  Otherwise
  the answer is ``bimodal=False`` with a reason starting ``"no pore mode"``; a histogram with a
  single grey level is never bimodal.
* **Two-point correlation** (:func:`two_point_correlation`): ``S2(r)`` is the probability that
  two pixels ``r`` apart are both pore, estimated along the x axis (pairs ``(i, j)``,
  ``(i, j + r)``) and along the y axis (pairs ``(i, j)``, ``(i + r, j)``) separately, each over
  all such pairs that lie inside the image (non-periodic: ``H (W - r)`` and ``(H - r) W`` pairs),
  and averaged: ``S2(r) = (S2_x(r) + S2_y(r)) / 2`` for ``r = 0 .. max_r`` (pixels).
  ``S2(0)`` is the porosity.  Counts are exact integers (shift-and-AND, vectorised over pixels
  and tiles, one pass per lag).
* **Chord lengths** (:func:`chord_lengths`): the lengths in pixels of all maximal runs of pore
  pixels along rows (x) and along columns (y), pooled (rows first).  Chords cut by the image
  border are kept at their visible length (a border-touching run counts as it is seen).  The
  distribution is number-weighted: each chord counts once.
* **Distances for Table 1** between a predicted and a true pore mask (same threshold):
  :func:`s2_distance` = ``mean_{r=0..max_r} |S2_pred(r) - S2_true(r)| / phi_true`` with
  ``phi_true = S2_true(0)`` the true porosity (a relative error, dimensionless; 0 when equal;
  ``inf`` when the truth has no pore and the prediction has some, 0 when neither has);
  :func:`chord_distance` = Wasserstein-1 distance (``scipy.stats.wasserstein_distance``) between
  the two number-weighted chord-length distributions, in pixels (0 when neither has a chord,
  ``inf`` when only one has).

Masks are boolean (or 0/1 integer) arrays ``(H, W)`` or a batch ``(N, H, W)``; a batch gives one
value (or one curve) per tile.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from scipy.stats import wasserstein_distance

from rocksr.evaluation.metrics import otsu_threshold_from_histogram

#: Defaults of the bimodality criterion (see the module docstring).
SMOOTH_SIGMA = 2.0
MAX_VALLEY_RATIO = 0.5
MIN_PORE_FRACTION = 0.01


# --------------------------------------------------------------------------- inputs


def _as_uint8_stack(images: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 images, got dtype {a.dtype}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"{name}: expected (H, W) or (N, H, W) images, got shape {a.shape}")
    return a


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Boolean (H, W) or (N, H, W) mask; 0/1 integer masks are accepted."""
    m = np.asarray(mask)
    if m.ndim not in (2, 3) or m.size == 0:
        raise ValueError(f"{name}: expected a (H, W) or (N, H, W) mask, got shape {m.shape}")
    if m.dtype != np.bool_:
        if not np.issubdtype(m.dtype, np.integer) or not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name}: mask must be boolean or 0/1 integers, got dtype {m.dtype}")
        m = m.astype(bool)
    return m


def _check_threshold(threshold: float, name: str) -> float:
    t = float(threshold)
    if not (0.0 <= t <= 1.0):
        raise ValueError(f"{name}: threshold must lie in [0, 1], got {threshold}")
    return t


def _check_hist(counts: np.ndarray, name: str) -> np.ndarray:
    c = np.asarray(counts)
    if c.shape != (256,) or not np.issubdtype(c.dtype, np.number):
        raise ValueError(f"{name}: expected 256 histogram counts, got shape {c.shape}")
    if (c < 0).any() or c.sum() <= 0:
        raise ValueError(f"{name}: histogram counts must be non-negative and not all 0")
    return c.astype(np.int64)


# --------------------------------------------------------------------------- threshold


def grey_histogram(images: np.ndarray) -> np.ndarray:
    """256-bin histogram (int64 counts) of uint8 images of any shape (pooled over all)."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.size == 0:
        raise ValueError(
            f"grey_histogram: expected non-empty uint8 images, got {a.dtype} {a.shape}"
        )
    return np.bincount(a.ravel(), minlength=256).astype(np.int64)


def pore_mask(images: np.ndarray, threshold: float) -> np.ndarray:
    """Pore mask of uint8 images ((H, W) or (N, H, W)): ``x / 255 <= threshold``.

    Uses a 256-entry lookup table computed with the same float arithmetic as
    :func:`rocksr.evaluation.metrics.porosity` on :func:`~rocksr.evaluation.metrics.to_unit`
    images, so ``pore_mask(x, t).mean()`` equals ``porosity(to_unit(x), t)`` exactly.
    """
    a = _as_uint8_stack(images, "pore_mask")
    t = _check_threshold(threshold, "pore_mask")
    lut = np.arange(256, dtype=np.float64) / 255.0 <= t
    return lut[a]


def pore_threshold(hist_counts: np.ndarray | None = None, *, fixed: float | None = None) -> float:
    """Pore threshold on the [0, 1] scale (pixels ``<= threshold`` are pore).

    ``fixed`` (a per-sample value set by the user) is validated and returned as is; the
    histogram is then not needed.  Otherwise Otsu's threshold of ``hist_counts`` (256 bins,
    e.g. the pooled train-split ground-truth SEM histogram from :func:`grey_histogram`).
    """
    if fixed is not None:
        return _check_threshold(fixed, "pore_threshold")
    if hist_counts is None:
        raise ValueError("pore_threshold: give hist_counts or a fixed threshold")
    return otsu_threshold_from_histogram(_check_hist(hist_counts, "pore_threshold"))


# --------------------------------------------------------------------------- bimodality


def bimodality(
    hist_counts: np.ndarray,
    *,
    smooth_sigma: float = SMOOTH_SIGMA,
    max_valley_ratio: float = MAX_VALLEY_RATIO,
    min_pore_fraction: float = MIN_PORE_FRACTION,
) -> dict[str, Any]:
    """Does a 256-bin SEM grey histogram have a clear (dark) pore mode?

    Criterion (thresholds are the keyword defaults): smooth the counts with a Gaussian of
    ``smooth_sigma`` grey levels (``mode="reflect"``; 0 = no smoothing); split at the Otsu
    threshold ``t`` of the raw counts; dark peak ``p1 = argmax h[0..t]``, bright peak
    ``p2 = argmax h[t+1..255]``, valley ``v = argmin h[p1..p2]`` (first minimum).  Bimodal iff
    ``valley_ratio = h[v] / min(h[p1], h[p2]) <= max_valley_ratio`` and
    ``pore_mode_fraction = (pixels with grey <= v) / all pixels >= min_pore_fraction``.

    Returns ``{"bimodal": bool, "reason": str, "otsu_threshold": float ([0, 1]),
    "dark_peak": int | None, "bright_peak": int | None, "valley": int | None (grey levels),
    "valley_ratio": float | None, "pore_mode_fraction": float | None}``.  When not bimodal the
    reason starts with ``"no pore mode"``.  The ``None`` values occur only for a histogram with
    a single grey level.
    """
    counts = _check_hist(hist_counts, "bimodality")
    if smooth_sigma < 0:
        raise ValueError(f"bimodality: smooth_sigma must be >= 0, got {smooth_sigma}")
    out: dict[str, Any] = {
        "bimodal": False,
        "reason": "",
        "otsu_threshold": otsu_threshold_from_histogram(counts),
        "dark_peak": None,
        "bright_peak": None,
        "valley": None,
        "valley_ratio": None,
        "pore_mode_fraction": None,
    }
    if np.count_nonzero(counts) < 2:
        out["reason"] = "no pore mode: the histogram has a single grey level"
        return out
    t = int(round(out["otsu_threshold"] * 255.0))
    h = counts.astype(np.float64)
    if smooth_sigma > 0:
        h = ndi.gaussian_filter1d(h, smooth_sigma, mode="reflect")
    p1 = int(np.argmax(h[: t + 1]))
    p2 = t + 1 + int(np.argmax(h[t + 1 :]))
    v = p1 + int(np.argmin(h[p1 : p2 + 1]))
    ratio = float(h[v] / min(h[p1], h[p2]))
    frac = float(counts[: v + 1].sum() / counts.sum())
    out.update(dark_peak=p1, bright_peak=p2, valley=v, valley_ratio=ratio, pore_mode_fraction=frac)
    if ratio > max_valley_ratio:
        out["reason"] = (
            f"no pore mode: valley/peak ratio {ratio:.2f} > {max_valley_ratio:g} "
            f"(no valley between grey {p1} and {p2})"
        )
    elif frac < min_pore_fraction:
        out["reason"] = (
            f"no pore mode: the dark mode holds {100 * frac:.2f}% of pixels "
            f"< {100 * min_pore_fraction:g}%"
        )
    else:
        out["bimodal"] = True
        out["reason"] = (
            f"pore mode at grey {p1} ({100 * frac:.1f}% of pixels), valley at grey {v}, "
            f"valley/peak ratio {ratio:.2f}"
        )
    return out


# --------------------------------------------------------------------------- S2 and chords


def two_point_correlation(mask: np.ndarray, max_r: int) -> np.ndarray:
    """S2(r) of the pore phase (``True`` = pore) for ``r = 0 .. max_r`` pixels.

    Average of the x-axis and y-axis estimates, each over the pairs inside the image
    (non-periodic); see the module docstring.  ``(H, W)`` -> shape ``(max_r + 1,)``;
    ``(N, H, W)`` -> ``(N, max_r + 1)``.  ``max_r`` must be below ``min(H, W)``.
    """
    m = _as_mask(mask, "two_point_correlation")
    h, w = m.shape[-2:]
    if int(max_r) != max_r or not (0 <= max_r < min(h, w)):
        raise ValueError(
            f"two_point_correlation: max_r must be an integer in [0, {min(h, w) - 1}], got {max_r}"
        )
    max_r = int(max_r)
    stack = m.reshape((-1, h, w))
    s2 = np.empty((stack.shape[0], max_r + 1), dtype=np.float64)
    s2[:, 0] = np.count_nonzero(stack, axis=(1, 2)) / (h * w)
    for r in range(1, max_r + 1):
        nx = np.count_nonzero(stack[:, :, r:] & stack[:, :, :-r], axis=(1, 2))
        ny = np.count_nonzero(stack[:, r:, :] & stack[:, :-r, :], axis=(1, 2))
        s2[:, r] = 0.5 * (nx / (h * (w - r)) + ny / ((h - r) * w))
    return s2 if m.ndim == 3 else s2[0]


def _row_runs(m: np.ndarray) -> np.ndarray:
    """Lengths of the True runs along the last axis of a (..., L) boolean array."""
    rows = m.reshape(-1, m.shape[-1])
    padded = np.zeros((rows.shape[0], rows.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = rows
    d = np.diff(padded.ravel())
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return (ends - starts).astype(np.int64)


def chord_lengths(mask: np.ndarray, direction: Literal["both", "x", "y"] = "both") -> np.ndarray:
    """Lengths (pixels, int64) of all runs of pore pixels along rows and/or columns.

    ``direction="x"``: along rows; ``"y"``: along columns; ``"both"``: rows then columns,
    concatenated.  A batch ``(N, H, W)`` pools the chords of all tiles.  Runs cut by the
    image border are kept at their visible length.
    """
    m = _as_mask(mask, "chord_lengths")
    if direction not in ("both", "x", "y"):
        raise ValueError(f"chord_lengths: direction must be 'both', 'x' or 'y', got {direction!r}")
    parts = []
    if direction in ("both", "x"):
        parts.append(_row_runs(m))
    if direction in ("both", "y"):
        parts.append(_row_runs(np.swapaxes(m, -1, -2)))
    return np.concatenate(parts)


# --------------------------------------------------------------------------- distances


def _pair_masks(
    mask_pred: np.ndarray, mask_true: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_mask(mask_pred, name), _as_mask(mask_true, name)
    if p.shape != t.shape:
        raise ValueError(f"{name}: shape mismatch, pred {p.shape} vs true {t.shape}")
    return p, t


def s2_distance(mask_pred: np.ndarray, mask_true: np.ndarray, max_r: int) -> float | np.ndarray:
    """``mean_r |S2_pred(r) - S2_true(r)| / phi_true`` over ``r = 0 .. max_r``.

    ``phi_true = S2_true(0)`` (true porosity).  A truth without pores gives 0 if the
    prediction has none either, else ``inf``.  ``(H, W)`` -> float; ``(N, H, W)`` -> per-tile
    array.
    """
    p, t = _pair_masks(mask_pred, mask_true, "s2_distance")
    sp = np.atleast_2d(two_point_correlation(p, max_r))
    st = np.atleast_2d(two_point_correlation(t, max_r))
    diff = np.abs(sp - st).mean(axis=1)
    phi = st[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(phi > 0, diff / np.where(phi > 0, phi, 1.0), np.where(diff > 0, np.inf, 0.0))
    return d if p.ndim == 3 else float(d[0])


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0 or b.size == 0:
        return 0.0 if a.size == b.size else float("inf")
    return float(wasserstein_distance(a, b))


def chord_distance(
    mask_pred: np.ndarray,
    mask_true: np.ndarray,
    direction: Literal["both", "x", "y"] = "both",
) -> float | np.ndarray:
    """Wasserstein-1 distance (pixels) between the chord-length distributions of two masks.

    Number-weighted distributions of :func:`chord_lengths`; 0 when neither mask has a pore,
    ``inf`` when only one has.  ``(H, W)`` -> float; ``(N, H, W)`` -> per-tile array.
    """
    p, t = _pair_masks(mask_pred, mask_true, "chord_distance")
    if p.ndim == 2:
        return _wasserstein(chord_lengths(p, direction), chord_lengths(t, direction))
    return np.array(
        [
            _wasserstein(chord_lengths(a, direction), chord_lengths(b, direction))
            for a, b in zip(p, t, strict=True)
        ],
        dtype=np.float64,
    )


# --------------------------------------------------------------------------- per-tile stats


def rock_statistics(images: np.ndarray, threshold: float, max_r: int = 32) -> dict[str, Any]:
    """Per-tile pore statistics of uint8 images ``(N, H, W)`` (``(H, W)`` counts as N = 1).

    Returns ``{"threshold": float, "r": (max_r + 1,) int array, "porosity": (N,),
    "s2": (N, max_r + 1), "chords": list of N int64 arrays (both directions)}``, with the pore
    phase ``x / 255 <= threshold`` (:func:`pore_mask`).
    """
    a = _as_uint8_stack(images, "rock_statistics")
    masks = pore_mask(a.reshape((-1,) + a.shape[-2:]), threshold)
    s2 = two_point_correlation(masks, max_r)
    return {
        "threshold": float(threshold),
        "r": np.arange(int(max_r) + 1),
        "porosity": s2[:, 0].copy(),
        "s2": s2,
        "chords": [chord_lengths(m) for m in masks],
    }


def compare_rock_statistics(
    pred_images: np.ndarray, true_images: np.ndarray, threshold: float, max_r: int = 32
) -> dict[str, np.ndarray]:
    """Per-tile prediction-vs-truth rock metrics of uint8 tiles ``(N, H, W)`` at one threshold.

    Returns ``{"porosity_pred", "porosity_true", "s2_distance", "chord_distance"}``, each an
    ``(N,)`` float64 array (definitions in the module docstring).
    """
    p = _as_uint8_stack(pred_images, "compare_rock_statistics")
    t = _as_uint8_stack(true_images, "compare_rock_statistics")
    if p.shape != t.shape:
        raise ValueError(f"compare_rock_statistics: shape mismatch, {p.shape} vs {t.shape}")
    mp = pore_mask(p.reshape((-1,) + p.shape[-2:]), threshold)
    mt = pore_mask(t.reshape((-1,) + t.shape[-2:]), threshold)
    return {
        "porosity_pred": mp.mean(axis=(1, 2), dtype=np.float64),
        "porosity_true": mt.mean(axis=(1, 2), dtype=np.float64),
        "s2_distance": np.asarray(s2_distance(mp, mt, max_r)),
        "chord_distance": np.asarray(chord_distance(mp, mt)),
    }
