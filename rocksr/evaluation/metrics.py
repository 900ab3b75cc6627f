"""Image-quality metrics on [0, 1] float images: PSNR, SSIM and porosity (seed §5.1).

Every choice that changes a number is a keyword in the signature (BasicSR style):

* ``psnr(pred, target, data_range=1.0, crop_border=0)`` is exactly the seed's
  ``10 log10(L^2 / MSE)`` with ``L = data_range = 1``.  Identical images (MSE = 0) give
  ``+inf`` on purpose (no warning, no epsilon): the value is exact, and the tables in
  :mod:`rocksr.evaluate` report how many infinite values a model had and average the finite
  ones (see :func:`summarize`).
* ``ssim(...)`` is the mean of the local SSIM map of Wang et al. (2004), computed the way
  ``skimage.metrics.structural_similarity`` computes it (tested to 1e-6):
  Gaussian weights (``sigma=1.5``, an 11-tap window: radius ``(win_size - 1) // 2``), population
  covariances (``use_sample_covariance=False``), ``K1=0.01``, ``K2=0.03``, ``C_i = (K_i L)^2``,
  ``mode="reflect"`` filtering, and the mean taken after dropping the ``(win_size - 1) // 2``
  pixels at each border that the window does not cover (scikit-image's crop).
  ``gaussian_weights=False`` uses a ``win_size`` x ``win_size`` uniform window instead.
* ``crop_border`` (both metrics) drops that many pixels at every image edge *before* the metric.

Inputs: one image ``(H, W)`` -> a Python ``float``; a batch ``(N, H, W)`` -> ``np.ndarray`` of
``N`` float64 values (vectorised; SSIM works through the batch in slices to bound memory).
Both must be floating point, same shape, finite and inside ``[0, data_range]``; anything else
is a ``ValueError`` that says what is wrong.  Convert 8-bit tiles with :func:`to_unit`.

Porosity: the pore fraction of an SEM image is the fraction of pixels ``<= threshold`` (pores
are the dark phase in back-scattered SEM).  The threshold is on the [0, 1] scale; the pipeline
takes it from the config or, by default, from Otsu's method on the pooled histogram of the
*train-split* ground-truth SEM tiles (:func:`otsu_threshold_from_histogram`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

_SSIM_SLICE_PX = 1 << 18  # pixels per vectorised SSIM slice (512^2 float64 = 2 MB per buffer)


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 images (any shape) -> float64 in [0, 1] (``x / 255``)."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise ValueError(f"to_unit expects uint8 images, got dtype {a.dtype}")
    return a.astype(np.float64) / 255.0


def check_images(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, *, name: str = "metric"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (pred, target) pair and return them as float64 arrays.

    Raises ``ValueError`` for: non-floating dtypes (e.g. uint8: convert with :func:`to_unit`),
    shapes other than (H, W) or (N, H, W), mismatched shapes, empty images, NaN/inf values,
    values outside ``[0, data_range]``, and a non-positive ``data_range``.
    """
    if not (isinstance(data_range, int | float) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"{name}: data_range must be a positive finite number, got {data_range!r}")
    out = []
    for label, img in (("pred", pred), ("target", target)):
        a = np.asarray(img)
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(
                f"{name}: {label} has dtype {a.dtype}; expected floating-point images in "
                f"[0, {data_range:g}] (convert uint8 with rocksr.evaluation.metrics.to_unit)"
            )
        if a.ndim not in (2, 3):
            raise ValueError(f"{name}: {label} has shape {a.shape}; expected (H, W) or (N, H, W)")
        if a.size == 0:
            raise ValueError(f"{name}: {label} is empty (shape {a.shape})")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: {label} contains NaN or inf")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > data_range:
            raise ValueError(
                f"{name}: {label} values span [{lo:g}, {hi:g}], outside [0, {data_range:g}]"
            )
        out.append(a.astype(np.float64, copy=False))
    if out[0].shape != out[1].shape:
        raise ValueError(f"{name}: shape mismatch, pred {out[0].shape} vs target {out[1].shape}")
    return out[0], out[1]


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return a
    if 2 * border >= min(a.shape[-2:]):
        raise ValueError(f"crop_border={border} leaves nothing of a {a.shape[-2:]} image")
    return a[..., border:-border, border:-border]


def _result(values: np.ndarray, batched: bool) -> float | np.ndarray:
    return values if batched else float(values[0])


def _squared_errors(p: np.ndarray, t: np.ndarray, crop_border: int) -> tuple[np.ndarray, bool]:
    """(per-image mean squared error in float64, whether the input was a batch)."""
    batched = p.ndim == 3
    p, t = (
        _crop(p.reshape((-1,) + p.shape[-2:]), crop_border),
        _crop(t.reshape((-1,) + t.shape[-2:]), crop_border),
    )
    return np.mean((p - t) ** 2, axis=(-2, -1), dtype=np.float64), batched


def mse(
    pred: np.ndarray, target: np.ndarray, *, data_range: float = 1.0, crop_border: int = 0
) -> float | np.ndarray:
    """Mean squared error per image (float for (H, W), array for (N, H, W))."""
    p, t = check_images(pred, target, data_range, name="mse")
    err, batched = _squared_errors(p, t, crop_border)
    return _result(err, batched)


def psnr(
    pred: np.ndarray, target: np.ndarray, data_range: float = 1.0, *, crop_border: int = 0
) -> float | np.ndarray:
    """PSNR in dB: ``10 log10(data_range^2 / MSE)`` per image; identical images give ``inf``."""
    p, t = check_images(pred, target, data_range, name="psnr")
    err, batched = _squared_errors(p, t, crop_border)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(float(data_range) ** 2 / err)  # err == 0 -> +inf, exactly
    return _result(values, batched)


def _ssim_setup(sigma: float, win_size: int | None, gaussian_weights: bool) -> int:
    if sigma <= 0:
        raise ValueError(f"ssim: sigma must be positive, got {sigma}")
    if win_size is None:
        # scikit-image: truncate 3.5 and radius int(3.5 sigma + 0.5) -> 11 taps for sigma 1.5
        win_size = 2 * int(3.5 * sigma + 0.5) + 1 if gaussian_weights else 7
    if win_size < 3 or win_size % 2 != 1:
        raise ValueError(f"ssim: win_size must be an odd integer >= 3, got {win_size}")
    return int(win_size)


def _ssim_map_batch(
    x: np.ndarray,
    y: np.ndarray,
    *,
    data_range: float,
    gaussian_weights: bool,
    sigma: float,
    win_size: int,
    use_sample_covariance: bool,
    K1: float,
    K2: float,
) -> np.ndarray:
    """Local SSIM maps of a float64 batch (N, H, W); same arithmetic as scikit-image."""
    radius = (win_size - 1) // 2
    if gaussian_weights:

        def filt(a: np.ndarray) -> np.ndarray:
            return ndi.gaussian_filter(a, sigma, mode="reflect", radius=radius, axes=(-2, -1))

    else:

        def filt(a: np.ndarray) -> np.ndarray:
            return ndi.uniform_filter(a, size=win_size, mode="reflect", axes=(-2, -1))

    n_px = win_size**2
    cov_norm = n_px / (n_px - 1) if use_sample_covariance else 1.0
    ux, uy = filt(x), filt(y)
    uxx, uyy, uxy = filt(x * x), filt(y * y), filt(x * y)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    a1, a2 = 2 * ux * uy + c1, 2 * vxy + c2
    b1, b2 = ux**2 + uy**2 + c1, vx + vy + c2
    return (a1 * a2) / (b1 * b2)


def _ssim_inputs(
    pred: np.ndarray,
    target: np.ndarray,
    data_range: float,
    sigma: float,
    win_size: int | None,
    gaussian_weights: bool,
    crop_border: int,
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Checked, border-cropped (N, H, W) stacks, the window size, and whether input was batched."""
    p, t = check_images(pred, target, data_range, name="ssim")
    win = _ssim_setup(sigma, win_size, gaussian_weights)
    batched = p.ndim == 3
    p = _crop(p.reshape((-1,) + p.shape[-2:]), crop_border)
    t = _crop(t.reshape((-1,) + t.shape[-2:]), crop_border)
    if min(p.shape[-2:]) < win:
        raise ValueError(f"ssim: image {p.shape[-2:]} is smaller than the {win}x{win} window")
    return p, t, win, batched


def ssim_map(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    data_range: float = 1.0,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    use_sample_covariance: bool = False,
    K1: float = 0.01,
    K2: float = 0.03,
    crop_border: int = 0,
) -> np.ndarray:
    """The full local SSIM map(s), same shape as the (border-cropped) input."""
    p, t, win, batched = _ssim_inputs(
        pred, target, data_range, sigma, win_size, gaussian_weights, crop_border
    )
    out = _ssim_map_batch(
        p,
        t,
        data_range=float(data_range),
        gaussian_weights=gaussian_weights,
        sigma=sigma,
        win_size=win,
        use_sample_covariance=use_sample_covariance,
        K1=K1,
        K2=K2,
    )
    return out if batched else out[0]


def ssim(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    data_range: float = 1.0,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    use_sample_covariance: bool = False,
    K1: float = 0.01,
    K2: float = 0.03,
    crop_border: int = 0,
) -> float | np.ndarray:
    """Mean SSIM per image, matching ``skimage.metrics.structural_similarity`` with the same
    ``data_range``, ``gaussian_weights``, ``sigma``, ``win_size``, ``use_sample_covariance``,
    ``K1``, ``K2`` (``win_size=None`` -> 11 for Gaussian weights with sigma 1.5, 7 for uniform).

    The mean excludes the ``(win_size - 1) // 2`` pixels at each border (scikit-image's crop),
    after ``crop_border`` pixels were dropped from the images themselves.
    """
    p, t, win, batched = _ssim_inputs(
        pred, target, data_range, sigma, win_size, gaussian_weights, crop_border
    )
    pad = (win - 1) // 2
    values = np.empty(p.shape[0], dtype=np.float64)
    step = max(1, _SSIM_SLICE_PX // (p.shape[-2] * p.shape[-1]))
    for i in range(0, p.shape[0], step):
        s = _ssim_map_batch(
            p[i : i + step],
            t[i : i + step],
            data_range=float(data_range),
            gaussian_weights=gaussian_weights,
            sigma=sigma,
            win_size=win,
            use_sample_covariance=use_sample_covariance,
            K1=K1,
            K2=K2,
        )
        if pad:
            s = s[:, pad:-pad, pad:-pad]
        values[i : i + step] = s.mean(axis=(-2, -1), dtype=np.float64)
    return _result(values, batched)


def porosity(images: np.ndarray, threshold: float) -> float | np.ndarray:
    """Pore fraction: share of pixels ``<= threshold`` in [0, 1] images ((H, W) or (N, H, W))."""
    a = np.asarray(images)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"porosity: expected floating images in [0, 1], got dtype {a.dtype}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"porosity: expected (H, W) or (N, H, W), got shape {a.shape}")
    if not (0.0 <= float(threshold) <= 1.0):
        raise ValueError(f"porosity: threshold must lie in [0, 1], got {threshold}")
    if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
        raise ValueError("porosity: images must be finite and inside [0, 1]")
    frac = np.mean(a.reshape((-1,) + a.shape[-2:]) <= threshold, axis=(-2, -1), dtype=np.float64)
    return frac if a.ndim == 3 else float(frac[0])


def otsu_threshold_from_histogram(counts: np.ndarray) -> float:
    """Otsu's threshold on [0, 1] from a 256-bin histogram of uint8 values.

    Returns ``t / 255`` where ``t`` is scikit-image's ``threshold_otsu`` on the histogram
    (pixels ``<= t`` are the dark class, i.e. pores).
    """
    from skimage.filters import threshold_otsu

    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (256,) or counts.sum() <= 0:
        raise ValueError("otsu_threshold_from_histogram: need 256 non-negative counts, not all 0")
    if np.count_nonzero(counts) < 2:
        return float(np.argmax(counts)) / 255.0
    t = threshold_otsu(hist=(counts, np.arange(256)))
    return float(t) / 255.0


def summarize(values: np.ndarray) -> dict[str, float]:
    """mean / std (ddof=1) / count of a metric column; infinite values are counted in ``n_inf``
    and left out of mean and std (PSNR of identical images).  NaN values are not allowed."""
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise ValueError("summarize: NaN metric values")
    finite = v[np.isfinite(v)]
    return {
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        "count": int(v.size),
        "n_inf": int(v.size - finite.size),
    }
