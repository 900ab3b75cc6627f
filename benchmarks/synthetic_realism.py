"""Compare the synthetic sample and the micro-CT forward model with real rock images.

Prints comparable statistics (histogram percentiles, noise, blur, grain-size proxies) for the
real SEM, the real micro-CT slices (central disc region only), the synthetic SEM / micro-CT
and the micro-CT simulated from the real SEM; then how hard the task is (identity and
histogram-matched PSNR / SSIM). Optionally writes a side-by-side montage PNG.

    python benchmarks/synthetic_realism.py [REAL_DIR] [--out montage.png] [--time]

Exits 0 with a message when REAL_DIR (default /work/shared/data/real) is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rocksr.data.synthetic import generate_pair, generate_sem, simulate_mct

SEM_UM, CT_UM = 0.95, 2.2  # pixel sizes of the real images (see the data README)
SEM_NAME = "northsea_sandstone_sem_bse_3000x2250.png"


# ----------------------------------------------------------------------------- statistics


def noise_sigma(img: np.ndarray) -> float:
    """Noise std from the 2x2 diagonal difference (unit gain for white noise), taken on the
    flattest half of the image (lowest 5x5 local gradient) so that edges do not count."""
    a = img.astype(np.float32)
    d = (a[1:, 1:] - a[1:, :-1] - a[:-1, 1:] + a[:-1, :-1]) / 2
    gy, gx = np.gradient(cv2.blur(a, (5, 5)))
    g = np.hypot(gx, gy)[1:, 1:]
    flat = g <= np.median(g)
    return float(d[flat].std())


def flat_std(img: np.ndarray) -> float:
    """Median 5x5 local std over pixels near the dominant (grain) grey level."""
    a = img.astype(np.float32)
    m = cv2.blur(a, (5, 5))
    s = np.sqrt(np.maximum(cv2.blur(a * a, (5, 5)) - m * m, 0))
    mode = float(np.argmax(np.bincount(img.ravel(), minlength=256)))
    sel = np.abs(m - mode) < 12
    return float(np.median(s[sel])) if sel.any() else float("nan")


def sharpness(img: np.ndarray) -> float:
    """Blur proxy: mean |grad| / std after a 3x3 median (1/px; lower = blurrier)."""
    a = cv2.medianBlur(img, 3).astype(np.float32)
    gy, gx = np.gradient(a)
    return float(np.mean(np.hypot(gx, gy)) / max(float(a.std()), 1e-6))


def acf_length(img: np.ndarray) -> float:
    """Distance (px) where the radially averaged autocorrelation first drops below 1/e."""
    a = img.astype(np.float32)
    a = cv2.medianBlur(img, 3).astype(np.float32) if img.dtype == np.uint8 else a
    n = min(a.shape[0], a.shape[1], 1024)
    y0, x0 = (a.shape[0] - n) // 2, (a.shape[1] - n) // 2
    a = a[y0 : y0 + n, x0 : x0 + n]
    a = a - a.mean()
    f = np.fft.rfft2(a, s=(2 * n, 2 * n))
    ac = np.fft.irfft2(np.abs(f) ** 2, s=(2 * n, 2 * n))
    ac = np.fft.fftshift(ac)
    ac /= ac[n, n]
    yy, xx = np.indices(ac.shape)
    r = np.hypot(yy - n, xx - n).astype(np.int32)
    prof = np.bincount(r.ravel(), ac.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    below = np.flatnonzero(prof[: n // 2] < 1 / np.e)
    return float(below[0]) if below.size else float("nan")


def chords(mask: np.ndarray) -> float:
    """Mean horizontal + vertical chord length (px) of a binary phase."""
    out = []
    for m in (mask, mask.T):
        d = np.diff(np.pad(m.astype(np.int8), ((0, 0), (1, 1))), axis=1)
        st, en = np.nonzero(d == 1), np.nonzero(d == -1)
        out.append(en[1] - st[1])
    c = np.concatenate(out)
    return float(c.mean()) if c.size else float("nan")


def pore_mask(img: np.ndarray) -> np.ndarray:
    """Dark phase after a 5x5 median: below the lowest multi-Otsu (3 classes) threshold."""
    from skimage.filters import threshold_multiotsu

    m = cv2.medianBlur(img, 5)
    t = threshold_multiotsu(m[::2, ::2], classes=3)[0]
    return m < t


def stats(img: np.ndarray, um: float) -> dict[str, float]:
    pm = pore_mask(img)
    p = np.percentile(img, [1, 5, 25, 50, 75, 95, 99])
    return {
        **{f"p{q}": float(v) for q, v in zip((1, 5, 25, 50, 75, 95, 99), p, strict=True)},
        "noise": noise_sigma(img),
        "flat_sd": flat_std(img),
        "sharp": sharpness(img),
        "acf_um": acf_length(img) * um,
        "pore_frac": float(pm.mean()),
        "pore_chord_um": chords(pm) * um,
        "solid_chord_um": chords(~pm) * um,
    }


def print_table(rows: list[tuple[str, float, dict[str, float]]]) -> None:
    keys = list(rows[0][2])
    head = f"{'image':34s} {'um/px':>5s} " + " ".join(f"{k:>8s}" for k in keys)
    print(head)
    print("-" * len(head))
    for name, um, s in rows:
        print(f"{name:34s} {um:5.2f} " + " ".join(f"{s[k]:8.2f}" for k in keys))


def difficulty(mct: np.ndarray, sem: np.ndarray) -> tuple[float, ...]:
    from skimage.exposure import match_histograms
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.metrics import structural_similarity as ssim

    hm = np.clip(np.rint(match_histograms(mct, sem)), 0, 255).astype(np.uint8)
    st_m, st_s = stretch(mct), stretch(sem)
    return tuple(
        f(ref, img, data_range=255)
        for ref, img in ((sem, mct), (sem, hm), (st_s, st_m))
        for f in (psnr, ssim)
    )


def stretch(img: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    """Percentile contrast stretch to 0..255 (like the pipeline's normalize step)."""
    a, b = np.percentile(img, [lo, hi])
    out = (img.astype(np.float32) - a) * (255.0 / max(b - a, 1e-6))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- real data


def load_real(real: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    import tifffile
    from PIL import Image

    sem = np.asarray(Image.open(real / SEM_NAME).convert("L"))
    cts = []
    for f in sorted((real / "versa_microct").glob("*.tif")):
        c = tifffile.imread(f)
        c = c if c.dtype == np.uint8 else (c / max(int(c.max()), 1) * 255).astype(np.uint8)
        h, w = c.shape
        r = int(0.28 * min(h, w))  # square well inside the plug disc (radius ~0.42 min(h, w))
        cts.append(np.ascontiguousarray(c[h // 2 - r : h // 2 + r, w // 2 - r : w // 2 + r]))
    return sem, cts


def to_um(img: np.ndarray, um_from: float, um_to: float) -> np.ndarray:
    """Resample to another pixel size (area average down, cubic up)."""
    s = um_from / um_to
    h, w = max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (w, h), interpolation=interp)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    cv2.rectangle(out, (0, 0), (12 * len(text) + 12, 34), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
    return out


def montage(panels: list[tuple[str, np.ndarray]], cols: int, size: int) -> np.ndarray:
    tiles = []
    for text, im in panels:
        t = cv2.resize(
            im,
            (size, size),
            interpolation=cv2.INTER_AREA if im.shape[0] > size else cv2.INTER_NEAREST,
        )
        tiles.append(label(t, text))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    return np.vstack(rows)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("real", nargs="?", default="/work/shared/data/real", type=Path)
    ap.add_argument("--out", type=Path, help="write a montage PNG here")
    ap.add_argument("--size", type=int, default=2048, help="synthetic image size (px)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--grain-radius",
        type=float,
        default=40.0,
        help="synthetic grain_radius_px; 40 matches the real SEM at 0.95 um/px",
    )
    ap.add_argument("--time", action="store_true", help="also time 256^2, 1024^2 generation")
    a = ap.parse_args(argv)
    if not (a.real / SEM_NAME).is_file():
        print(f"real reference images not found in {a.real}; skipping the realism benchmark")
        return 0

    real_sem, real_cts = load_real(a.real)
    rock = {"grain_radius_px": a.grain_radius}
    t0 = time.perf_counter()
    sem, phases = generate_sem(a.size, a.size, a.seed, **rock)
    t1 = time.perf_counter()
    mct = simulate_mct(sem, a.seed + 7919, phases=phases)
    t2 = time.perf_counter()
    sim_real = simulate_mct(real_sem, a.seed)
    print(
        f"synthetic {a.size}^2: SEM {t1 - t0:.2f} s, micro-CT {t2 - t1:.2f} s; "
        f"grain_radius_px={a.grain_radius}"
    )
    print(
        f"phase fractions: { {int(k): round(float(v), 3) for k, v in enumerate(np.bincount(phases.ravel(), minlength=8) / phases.size)} }\n"
    )

    ct_mean = {
        k: float(np.mean([stats(c, CT_UM)[k] for c in real_cts])) for k in stats(real_cts[0], CT_UM)
    }
    rows = [
        ("real SEM", SEM_UM, stats(real_sem, SEM_UM)),
        ("synthetic SEM", SEM_UM, stats(sem, SEM_UM)),
        (f"real micro-CT (mean of {len(real_cts)} slices)", CT_UM, ct_mean),
        ("synthetic micro-CT", SEM_UM, stats(mct, SEM_UM)),
        ("synthetic micro-CT @2.2um", CT_UM, stats(to_um(mct, SEM_UM, CT_UM), CT_UM)),
        ("micro-CT sim. from real SEM", SEM_UM, stats(sim_real, SEM_UM)),
        ("  same @2.2um", CT_UM, stats(to_um(sim_real, SEM_UM, CT_UM), CT_UM)),
    ]
    print(
        "pNN: grey percentiles; noise: pixel noise std (flat half); flat_sd: 5x5 std at grain level; sharp: mean|grad|/std (1/px);"
    )
    print("acf_um: autocorrelation 1/e length; pore_*: dark phase (median-5, multi-Otsu)\n")
    print_table(rows)

    print("\nTask difficulty (skimage, data_range=255): PSNR dB / SSIM")
    n = min(1024, a.size)
    m1, s1 = generate_pair(n, n, a.seed, rock=rock)
    m2, s2 = generate_pair(1024, 1024, a.seed)
    y0, x0 = (real_sem.shape[0] - 1024) // 2, (real_sem.shape[1] - 1024) // 2
    rs = np.ascontiguousarray(real_sem[y0 : y0 + 1024, x0 : x0 + 1024])
    for name, (mc, se) in {
        f"synthetic {n}^2 (grain r {a.grain_radius:g})": (m1, s1),
        "synthetic 1024^2 (defaults)": (m2, s2),
        "synthetic 1024^2, factor 8": generate_pair(
            1024, 1024, a.seed, forward={"partial_volume_factor": 8}
        ),
        "synthetic 1024^2, f4 + 1.5 px misreg.": generate_pair(
            1024, 1024, a.seed, forward={"misregistration_px": 1.5}
        ),
        "semi-real 1024^2 (real SEM crop)": (simulate_mct(rs, a.seed), rs),
    }.items():
        ip, iss, hp, hs, sp, ss = difficulty(mc, se)
        print(
            f"  {name:36s} identity {ip:5.2f} / {iss:.3f}   hist-matched {hp:5.2f} / {hs:.3f}"
            f"   both p0.5-99.5 stretched {sp:5.2f} / {ss:.3f}"
        )

    if a.time:
        print("\nTimings (generate_pair, this process, all cores cv2 may use):")
        for sz in (256, 1024):
            t = time.perf_counter()
            generate_pair(sz, sz, 0)
            print(f"  {sz}^2: {time.perf_counter() - t:.3f} s")

    if a.out:
        # same physical field of view (~970 um) in every overview panel; 1:1 detail panels
        fov = 1024
        ys, xs = (real_sem.shape[0] - fov) // 2, (real_sem.shape[1] - fov) // 2
        c0 = real_cts[len(real_cts) // 2]
        nct = round(fov * SEM_UM / CT_UM)
        cy, cx = (c0.shape[0] - nct) // 2, (c0.shape[1] - nct) // 2
        sim_c = sim_real[ys : ys + fov, xs : xs + fov]
        d = 384
        panels = [
            ("real SEM", real_sem[ys : ys + fov, xs : xs + fov]),
            ("synthetic SEM", sem[:fov, :fov]),
            ("real micro-CT (same FOV)", c0[cy : cy + nct, cx : cx + nct]),
            ("synthetic micro-CT", mct[:fov, :fov]),
            ("micro-CT from real SEM", sim_c),
            ("real SEM (whole)", real_sem),
            ("real SEM 1:1", real_sem[ys : ys + d, xs : xs + d]),
            ("synthetic SEM 1:1", sem[:d, :d]),
            ("real CT 1:1 (2.2um)", c0[cy : cy + d, cx : cx + d]),
            ("synthetic CT 1:1", mct[:d, :d]),
            ("sim CT from real 1:1", sim_c[:d, :d]),
            ("real CT slice", c0),
        ]
        img = montage(panels, cols=6, size=640)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(a.out), img)
        print(f"\nmontage written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
