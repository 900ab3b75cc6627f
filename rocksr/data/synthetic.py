"""Built-in synthetic paired sample: an SEM-like sandstone image and its micro-CT partner.

``generate_sem`` paints touching, irregular grains of several minerals with pores, clay,
cement, feldspar textures and cracks; ``simulate_mct`` turns any SEM image (synthetic or
real) into a micro-CT-like image with a forward model: phase -> attenuation (not a monotone
remap of SEM brightness), PSF blur, partial-volume averaging, signal-dependent noise,
optional cupping / rings / misregistration. Everything is numpy + scipy + OpenCV, float32,
and deterministic by seed.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from scipy.spatial import cKDTree
from scipy.special import ndtri

from rocksr.config.merge import merge_known

#: Phase ids of the label map returned by :func:`generate_sem`.
PHASES: tuple[str, ...] = (
    "pore",  # 0 epoxy-filled pore (also cracks, dissolution pits, grain-contact gaps)
    "quartz",  # 1
    "k_feldspar",  # 2 perthitic, partly dissolved
    "plagioclase",  # 3 partly dissolved along cleavage
    "dolomite",  # 4 SEM-grey like quartz but CT-bright
    "clay",  # 5 micro-porous, speckled, in pore throats and as coatings
    "calcite",  # 6 pore-filling cement
    "heavy",  # 7 pyrite / zircon / Fe-Ti oxides
)


PORE, QUARTZ, KFS, PLAG, DOL, CLAY, CALC, HEAVY = range(len(PHASES))


#: BSE grey level per phase (mean atomic number), tuned to the North Sea SEM (pore 22, quartz 206).
SEM_LEVELS = np.array([22, 206, 226, 197, 200, 150, 236, 252], dtype=np.float32)


#: micro-CT grey level per phase (density x effective Z); order differs from SEM_LEVELS:
#: dolomite and calcite swap, plagioclase/dolomite straddle quartz differently.
CT_LEVELS = np.array([38, 120, 146, 113, 168, 86, 156, 245], dtype=np.float32)


ROCK_DEFAULTS: dict[str, Any] = {
    "grain_radius_px": 40.0,  # median grain radius (px); 40 matches the real SEM at 0.95 um/px
    "radius_log_sd": 0.35,  # log-normal spread of grain radii
    "porosity": 0.15,  # area fraction of open pore (phase 0), incl. cracks and pits
    "grain_overlap": 0.15,  # allowed disc overlap when placing grains (fraction of r1 + r2)
    "size_jitter": 0.15,  # per-grain random shrink (opens pores around some grains)
    "elongation": 0.3,  # max ellipse term of the grain outline
    "angularity": 0.07,  # amplitude of angular harmonics 3..6 of the grain outline
    "boundary_roughness": 0.03,  # relative amplitude of smooth outline noise
    "feldspar_fraction": 0.14,  # fraction of grains that are feldspar
    "k_feldspar_share": 0.5,  # share of feldspar grains that are K-feldspar (rest plagioclase)
    "altered_feldspar_share": 0.45,  # share of feldspar grains with dissolution pits
    "dolomite_fraction": 0.05,  # fraction of grains that are dolomite
    "heavy_fraction": 0.03,  # fraction of (small) grains that are heavy minerals
    "clay_fraction": 0.07,  # area fraction of pore-filling / coating clay
    "cement_fraction": 0.015,  # area fraction of calcite cement patches in pores
    "crack_density": 1.0,  # relative amount of thin intragranular cracks (0 = none)
    "contact_lines": 1.0,  # 1: dark 1-px gaps along grain contacts, 0: none
    "sem_blur": 0.6,  # Gaussian blur sigma of the SEM finish (px)
    "sem_noise": 2.0,  # Gaussian noise sigma of the SEM finish (grey levels)
}


FORWARD_DEFAULTS: dict[str, Any] = {
    "psf_sigma": 1.5,  # Gaussian PSF sigma in SEM pixels
    "partial_volume_factor": 4,  # block-average factor (CT voxel / SEM pixel), int >= 1
    "upsample": "cubic",  # back to the SEM grid: "cubic" | "linear"
    "noise_sigma": 0.025,  # noise std at quartz level on the CT grid, fraction of 255
    "noise_signal_power": 0.5,  # noise std ~ (signal / quartz level) ** power
    "cupping": 0.03,  # relative darkening of the centre (beam hardening); 0 = off
    "rings": 0.008,  # ring-artifact amplitude, fraction of 255; 0 = off
    "misregistration_px": 0.0,  # max smooth displacement of the CT vs the SEM (SEM px)
    "texture_gain": 0.5,  # share of within-phase SEM texture carried into attenuation
}


def _check_size(height: int, width: int) -> tuple[int, int]:
    h, w = int(height), int(width)
    if h != height or w != width or h < 8 or w < 8:
        raise ValueError(f"height and width must be integers >= 8, got {height}x{width}")
    return h, w


def _rngs(seed: int, n: int, salt: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence([int(seed) % 2**64, salt])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Unit-std float32 Gaussian random field with correlation length ~scale px."""
    s = max(1, int(round(scale)))
    hl, wl = -(-h // s) + 4, -(-w // s) + 4
    a = rng.standard_normal((hl, wl), dtype=np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    if s > 1:
        a = cv2.resize(a, (wl * s, hl * s), interpolation=cv2.INTER_CUBIC)
    a = np.ascontiguousarray(a[s : s + h, s : s + w])
    a *= np.float32(1.0 / max(float(a[::4, ::4].std()), 1e-6))
    return a


def _quantile(a: np.ndarray, q: float) -> float:
    """Quantile on a strided subsample (fast, deterministic)."""
    step = max(1, int(np.sqrt(a.size / 2e6)))
    sub = a[::step, ::step] if a.ndim == 2 else a[::step]
    return float(np.quantile(sub, min(max(q, 0.0), 1.0)))


def _place_grains(
    rng: np.random.Generator, h: int, w: int, r_med: float, log_sd: float, overlap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random sequential addition of log-normal discs, largest first; returns cy, cx, r."""
    r_lo, r_hi = max(2.0, 0.35 * r_med), 3.0 * r_med
    m = r_med  # margin so that grains are cut by the image border
    area = (h + 2 * m) * (w + 2 * m)
    mean_area = np.pi * r_med**2 * np.exp(2 * log_sd**2)
    n = int(3.0 * area / mean_area) + 16
    r = np.clip(r_med * np.exp(log_sd * rng.standard_normal(n)), r_lo, r_hi)
    cy = rng.uniform(-m, h + m, n)
    cx = rng.uniform(-m, w + m, n)
    order = np.argsort(-r, kind="stable")
    r, cy, cx = r[order], cy[order], cx[order]
    keep = 1.0 - overlap
    tree = cKDTree(np.column_stack([cy, cx]))
    neigh = tree.query_ball_point(np.column_stack([cy, cx]), (r + r.max()) * keep)
    accepted = np.zeros(n, dtype=bool)
    cyl, cxl, rl = cy.tolist(), cx.tolist(), r.tolist()
    for i in range(n):
        yi, xi, ri = cyl[i], cxl[i], rl[i]
        ok = True
        for j in neigh[i]:
            if accepted[j]:
                lim = (ri + rl[j]) * keep
                dy, dx = yi - cyl[j], xi - cxl[j]
                if dy * dy + dx * dx < lim * lim:
                    ok = False
                    break
        accepted[i] = ok
    return cy[accepted], cx[accepted], r[accepted]


def _paint_grains(
    rng: np.random.Generator,
    h: int,
    w: int,
    cy: np.ndarray,
    cx: np.ndarray,
    r: np.ndarray,
    elongation: float,
    angularity: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: best normalised distance d = rho / R_g(theta) and the grain index (or -1)."""
    n = r.size
    nb = 128
    th = np.linspace(-np.pi, np.pi, nb, endpoint=False) + np.pi / nb
    e = rng.uniform(0.0, elongation, n)
    phi = rng.uniform(0, np.pi, n)
    shape = 1.0 + e[:, None] * np.cos(2 * (th[None, :] - phi[:, None]))
    for k in range(3, 7):
        amp = angularity * rng.standard_normal(n) / np.sqrt(k - 2)
        ph = rng.uniform(0, 2 * np.pi, n)
        shape += amp[:, None] * np.cos(k * th[None, :] + ph[:, None])
    shape = np.maximum(shape, 0.5).astype(np.float32)
    inv_rad = (1.0 / (r[:, None] * shape)).astype(np.float32)  # (n, nb)
    reach = r * shape.max(axis=1) * 1.6  # covers d < 1.6
    best = np.full((h, w), 1e6, dtype=np.float32)
    lab = np.full((h, w), -1, dtype=np.int32)
    scale = np.float32(nb / (2 * np.pi))
    for g in range(n):
        y0, y1 = max(int(cy[g] - reach[g]), 0), min(int(cy[g] + reach[g]) + 2, h)
        x0, x1 = max(int(cx[g] - reach[g]), 0), min(int(cx[g] + reach[g]) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy[g]))[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx[g]))[None, :]
        dyb = np.broadcast_to(dy, (y1 - y0, x1 - x0))
        dxb = np.broadcast_to(dx, (y1 - y0, x1 - x0))
        rho, ang = cv2.cartToPolar(np.ascontiguousarray(dxb), np.ascontiguousarray(dyb))
        idx = (ang * scale).astype(np.int32)  # ang in [0, 2pi)
        np.minimum(idx, nb - 1, out=idx)
        # table is indexed from -pi; shift by half a turn
        idx += nb // 2
        idx %= nb
        d = rho * inv_rad[g][idx]
        bp = best[y0:y1, x0:x1]
        upd = d < bp
        bp[upd] = d[upd]
        lab[y0:y1, x0:x1][upd] = g
    return best, lab


def _assign_minerals(rng: np.random.Generator, r: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    n = r.size
    u = rng.random(n)
    mineral = np.full(n, QUARTZ, dtype=np.uint8)
    f_feld, f_dol = float(p["feldspar_fraction"]), float(p["dolomite_fraction"])
    k_share = float(p["k_feldspar_share"])
    mineral[u < f_feld * k_share] = KFS
    mineral[(u >= f_feld * k_share) & (u < f_feld)] = PLAG
    mineral[(u >= f_feld) & (u < f_feld + f_dol)] = DOL
    small = r < np.median(r) if n else np.zeros(0, dtype=bool)
    heavy = small & (rng.random(n) < 2.0 * float(p["heavy_fraction"]))
    mineral[heavy] = HEAVY
    return mineral


# a linear recipe of commented physical steps whose order fixes the random draws (and so every
# synthetic sample bit for bit): kept in one function on purpose
def generate_sem(  # noqa: PLR0915
    height: int, width: int, seed: int, **rock: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic BSE-SEM image of a sandstone and its phase label map (ids in ``PHASES``).

    Keyword parameters and defaults: ``ROCK_DEFAULTS``. Returns ``(sem, phases)``, both
    uint8 of shape (height, width); identical for identical arguments.
    """
    p = merge_known(ROCK_DEFAULTS, rock, "rock")
    h, w = _check_size(height, width)
    r_med = float(p["grain_radius_px"])
    if r_med < 2:
        raise ValueError("grain_radius_px must be >= 2")
    por = float(p["porosity"])
    clay_f, cem_f = float(p["clay_fraction"]), float(p["cement_fraction"])
    if not 0.0 <= por < 0.9 or clay_f < 0 or cem_f < 0 or por + clay_f + cem_f >= 0.95:
        raise ValueError("need 0 <= porosity, clay_fraction, cement_fraction and sum < 0.95")
    (r_place, r_shape, r_min, r_rough, r_fill, r_feld, r_crack, r_tex, r_noise, r_pit) = _rngs(
        seed, 10, 0x5E1
    )

    # 1. grains: touching, irregular, log-normal sizes
    cy, cx, rad = _place_grains(
        r_place, h, w, r_med, float(p["radius_log_sd"]), float(p["grain_overlap"])
    )
    d, lab = _paint_grains(
        r_shape, h, w, cy, cx, rad, float(p["elongation"]), float(p["angularity"])
    )
    mineral = np.append(_assign_minerals(r_min, rad, p), np.uint8(PORE))  # lab -1 -> pore
    rough = float(p["boundary_roughness"])
    if rough > 0:
        nz = _smooth_noise(r_rough, h, w, max(2.0, r_med / 3))
        nz += 0.5 * _smooth_noise(r_rough, h, w, 2.0)
        nz *= np.float32(rough)
        nz += np.float32(1.0)
        d *= nz
        del nz
    jit = float(p["size_jitter"])
    if jit > 0:
        inv_s = np.append(1.0 / (1.0 - jit * r_rough.random(rad.size)), 1.0).astype(np.float32)
        d *= inv_s[lab]
        del inv_s
    phases = mineral[lab]  # uint8, lab == -1 picks the appended pore
    delta = np.zeros((h, w), dtype=np.float32)  # SEM texture added to SEM_LEVELS[phase]

    # 2. intragranular pore features (pits, cracks, contact gaps): flagged, set to pore later
    holes = np.zeros((h, w), dtype=bool)
    feld_idx = np.flatnonzero((phases == KFS) | (phases == PLAG))
    if feld_idx.size:
        g = lab.ravel()[feld_idx]
        ng = rad.size
        ang = r_feld.uniform(0, np.pi, ng).astype(np.float32)
        lam = r_feld.uniform(4.0, 9.0, ng).astype(np.float32)
        altered = r_feld.random(ng) < float(p["altered_feldspar_share"])
        alt_level = np.where(altered, r_feld.uniform(0.12, 0.45, ng), 0.0)
        yy = (feld_idx // w).astype(np.float32)
        xx = (feld_idx % w).astype(np.float32)
        warp = _smooth_noise(r_feld, h, w, 6.0).ravel()[feld_idx]
        stripe = np.sin(
            (xx * np.cos(ang[g]) + yy * np.sin(ang[g])) * (2 * np.pi / lam[g]) + 1.5 * warp
        ).astype(np.float32)
        del yy, xx, warp
        is_k = mineral[g] == KFS
        # perthite: darker albite lamellae in K-feldspar
        delta.ravel()[feld_idx] += np.where(is_k & (stripe > 0.55), -16.0, 0.0).astype(np.float32)
        score = 0.75 * _smooth_noise(r_feld, h, w, 2.0).ravel()[feld_idx]
        score += 0.65 * _smooth_noise(r_feld, h, w, 7.0).ravel()[feld_idx]
        score += 0.5 * stripe * np.where(is_k, 0.4, 1.0).astype(np.float32)
        sd = float(np.sqrt(0.75**2 + 0.65**2 + 0.125))
        a = alt_level[g]
        thr = np.where(a > 0, ndtri(1.0 - np.clip(a, 1e-6, 1 - 1e-6)) * sd, np.inf)
        holes.ravel()[feld_idx[score > thr]] = True
        # bright remnants / illitised patches in altered grains
        bright = (a > 0) & (score < -1.1 * sd)
        delta.ravel()[feld_idx[bright]] += 24.0
        del score, stripe, g, thr, a
    crack_density = float(p["crack_density"])
    if crack_density > 0:
        cs = max(3.0, 1.5 * r_med)
        c = _smooth_noise(r_crack, h, w, cs)
        gy, gx = np.gradient(c[: min(h, 256), : min(w, 256)])
        wid = 0.55 * float(np.mean(np.hypot(gy, gx)))
        gate = _smooth_noise(r_crack, h, w, max(4.0, 1.5 * r_med))
        np.abs(c, out=c)
        cut = 1.0 - 0.5 * np.log(crack_density)
        cr = (c < wid) & (gate > cut)
        del c, gate
        cr &= (phases == QUARTZ) | (phases == KFS) | (phases == PLAG)
        holes |= cr
        del cr
    if float(p["contact_lines"]) > 0:
        cl = np.zeros((h, w), dtype=bool)
        cl[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        cl[1:, :] |= lab[1:, :] != lab[:-1, :]
        cl &= lab >= 0
        cl &= _smooth_noise(r_crack, h, w, max(3.0, 0.5 * r_med)) > 2.0 - 3.0 * min(
            1.0, float(p["contact_lines"])
        )
        holes |= cl
        del cl

    # 3. grain / intergranular cut so that the pore fraction hits `porosity`
    t0 = _quantile(d, 1.0 - (por + clay_f + cem_f))
    in0 = d < t0
    q = float(np.count_nonzero(holes & in0)) / max(1, int(np.count_nonzero(in0)))
    del in0
    q = min(q, 0.5)
    gfrac = (por + clay_f + cem_f - q) / (1.0 - q)
    gfrac = min(max(gfrac, clay_f + cem_f), 0.97)
    t = _quantile(d, 1.0 - gfrac)
    inter = d >= t
    phases[inter] = PORE
    holes &= ~inter
    n_inter = int(np.count_nonzero(inter))

    # 4. pore fill: calcite cement patches (whole pores), clay in throats and as coatings
    if n_inter and (cem_f > 0 or clay_f > 0):
        ii = np.flatnonzero(inter)
        big = _smooth_noise(r_fill, h, w, max(3.0, 1.2 * r_med)).ravel()[ii]
        if cem_f > 0:
            cthr = _quantile(big, 1.0 - min(1.0, cem_f * h * w / n_inter))
            cem = big > cthr
            phases.ravel()[ii[cem]] = CALC
            delta.ravel()[ii[cem]] += 5.0 * r_fill.standard_normal(int(cem.sum())).astype(
                np.float32
            )
            ii, big = ii[~cem], big[~cem]
        if clay_f > 0 and ii.size:
            near = (d.ravel()[ii] - np.float32(t)) * np.float32(4.0 / max(t, 1e-3))
            patch = _smooth_noise(r_fill, h, w, max(2.0, 0.4 * r_med)).ravel()[ii]
            score = near - 1.0 * patch - 0.5 * big
            kthr = _quantile(score, min(1.0, clay_f * h * w / ii.size))
            cl = ii[score <= kthr]
            phases.ravel()[cl] = CLAY
            del near, patch, score
            # speckle + micro-pores + pyrite framboid dots
            sp = r_tex.standard_normal(cl.size).astype(np.float32)
            mp = r_tex.standard_normal(cl.size).astype(np.float32)
            mot = _smooth_noise(r_tex, h, w, 3.0).ravel()[cl]
            delta.ravel()[cl] += (
                20.0 * sp + 16.0 * mot - np.where(mp > 1.2, 60.0, 0.0).astype(np.float32)
            )
            del mot
            phases.ravel()[cl[sp > 3.1]] = HEAVY
            del sp, mp
        del ii, big
    del inter, d
    pits = _smooth_noise(r_pit, h, w, 2.0) > 3.1
    pits &= phases == QUARTZ
    holes |= pits
    del pits
    phases[holes] = PORE
    del holes

    # 5. subtle per-grain grey variation (orientation / composition) and epoxy shading
    goff = np.append(r_tex.normal(0.0, 1.5, rad.size), 0.0).astype(np.float32)
    solid = (phases != PORE) & (phases != CLAY)
    delta[solid] += goff[lab[solid]]
    del solid, lab
    dol = phases == DOL
    if dol.any():
        delta[dol] += 5.0 * _smooth_noise(r_tex, h, w, 4.0)[dol]
    del dol

    # 6. SEM finish: levels + texture, slight blur, noise
    sem = SEM_LEVELS[phases]
    sem += delta
    del delta
    if float(p["sem_blur"]) > 0:
        sem = cv2.GaussianBlur(sem, (0, 0), float(p["sem_blur"]), borderType=cv2.BORDER_REFLECT)
    if float(p["sem_noise"]) > 0:
        sem += np.float32(p["sem_noise"]) * r_noise.standard_normal((h, w), dtype=np.float32)
    np.clip(sem, 0, 255, out=sem)
    out = np.empty((h, w), dtype=np.uint8)
    np.rint(sem, out=sem)
    out[...] = sem
    return out, phases


def segment_sem(sem: np.ndarray) -> np.ndarray:
    """Phase map of an SEM image from its grey levels (for real SEM images).

    Otsu splits pore from solid; the histogram modes of the two classes give the pore and
    the quartz (dominant grain) level; grey levels relative to those two anchors are cut into
    pore / clay / quartz / K-feldspar-like bright / heavy. Within-phase texture is kept by
    ``simulate_mct`` through ``texture_gain``.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(sem)
    u8 = img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)
    sm = cv2.GaussianBlur(u8, (0, 0), 1.0)
    hist = np.bincount(sm[::2, ::2].ravel(), minlength=256).astype(np.float64)
    hist = np.convolve(hist, np.ones(5) / 5, mode="same")
    try:
        t = int(threshold_otsu(hist=hist))
    except (ValueError, TypeError):
        t = 128
    t = min(max(t, 1), 254)
    lo = int(np.argmax(hist[:t]))
    hi = t + int(np.argmax(hist[t:]))
    span = max(hi - lo, 20)
    x = (sm.astype(np.float32) - lo) / np.float32(span)
    cuts = np.array([0.35, 0.85, 1.07, 1.2], dtype=np.float32)
    cls = np.digitize(x, cuts).astype(np.uint8)
    lut = np.array([PORE, CLAY, QUARTZ, KFS, HEAVY], dtype=np.uint8)
    return lut[cls]


# the forward model's steps in order (see the docstring), one function on purpose
def simulate_mct(  # noqa: PLR0915
    sem: np.ndarray, seed: int, phases: np.ndarray | None = None, **forward: Any
) -> np.ndarray:
    """Micro-CT partner (uint8, same shape) of an SEM image by a forward model.

    Phase -> attenuation (``CT_LEVELS`` plus ``texture_gain`` x within-phase SEM texture),
    Gaussian PSF, block-average by ``partial_volume_factor`` (the CT grid), cupping, rings,
    optional smooth misregistration and signal-dependent noise on the CT grid, then cubic or
    linear up-sampling back to the SEM grid. Without ``phases`` the SEM is segmented by
    :func:`segment_sem`. Keyword parameters and defaults: ``FORWARD_DEFAULTS``.
    """
    p = merge_known(FORWARD_DEFAULTS, forward, "forward")
    img = np.asarray(sem)
    if img.ndim != 2:
        raise ValueError(f"sem must be a 2-D grey image, got shape {img.shape}")
    h, w = img.shape
    f = int(p["partial_volume_factor"])
    if f != p["partial_volume_factor"] or f < 1:
        raise ValueError("partial_volume_factor must be an integer >= 1")
    if p["upsample"] not in ("cubic", "linear"):
        raise ValueError("upsample must be 'cubic' or 'linear'")
    if phases is None:
        phases = segment_sem(img)
    phases = np.asarray(phases)
    if phases.shape != img.shape:
        raise ValueError(f"phases shape {phases.shape} != sem shape {img.shape}")
    if phases.size and int(phases.max()) >= len(PHASES):
        raise ValueError(f"phase ids must be < {len(PHASES)}")
    phases = phases.astype(np.uint8, copy=False)
    r_mis, r_ring, r_noise = _rngs(seed, 3, 0xC7)

    # attenuation map on the SEM grid
    s = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    step = max(1, int(np.sqrt(s.size / 4e6)))
    ps, ss = phases[::step, ::step].ravel(), s[::step, ::step].ravel()
    cnt = np.bincount(ps, minlength=len(PHASES))
    mean = np.bincount(ps, weights=ss, minlength=len(PHASES)) / np.maximum(cnt, 1)
    mu = s
    mu -= mean.astype(np.float32)[phases]
    mu *= np.float32(p["texture_gain"])
    mu += CT_LEVELS[phases]
    if float(p["psf_sigma"]) > 0:
        mu = cv2.GaussianBlur(mu, (0, 0), float(p["psf_sigma"]), borderType=cv2.BORDER_REFLECT)

    # partial volume: block average onto the CT grid (edge-padded to a multiple of f)
    hp, wp = -(-h // f) * f, -(-w // f) * f
    if (hp, wp) != (h, w):
        mu = np.pad(mu, ((0, hp - h), (0, wp - w)), mode="edge")
    low = mu.reshape(hp // f, f, wp // f, f).mean(axis=(1, 3), dtype=np.float32)
    del mu
    hl, wl = low.shape

    mis = float(p["misregistration_px"])
    if mis > 0:
        sc = max(2.0, min(hl, wl) / 4)
        dy = _smooth_noise(r_mis, hl, wl, sc)
        dx = _smooth_noise(r_mis, hl, wl, sc)
        amp = np.float32(mis / f / max(float(np.abs(dy).max()), float(np.abs(dx).max()), 1e-6))
        gy, gx = np.mgrid[0:hl, 0:wl].astype(np.float32)
        low = cv2.remap(
            low, gx + amp * dx, gy + amp * dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        del dy, dx, gy, gx

    cup, ring = float(p["cupping"]), float(p["rings"])
    if cup > 0 or ring > 0:
        yc = (np.arange(hl, dtype=np.float32) - (hl - 1) / 2)[:, None]
        xc = (np.arange(wl, dtype=np.float32) - (wl - 1) / 2)[None, :]
        rr = np.sqrt(yc * yc + xc * xc)
        rmax = float(rr.max()) or 1.0
        if cup > 0:
            low *= 1.0 - np.float32(cup) * (1.0 - (rr / np.float32(rmax)) ** 2)
        if ring > 0:
            nr = int(rmax) + 2
            prof = np.zeros(nr, dtype=np.float32)
            k = max(1, nr // 12)
            pos = r_ring.integers(0, nr, k)
            prof[pos] = r_ring.standard_normal(k).astype(np.float32)
            prof += 0.25 * r_ring.standard_normal(nr).astype(np.float32)
            prof = cv2.GaussianBlur(prof[None, :], (0, 0), 0.7)[0]
            prof *= np.float32(ring * 255 / max(float(np.abs(prof).max()), 1e-6))
            low += prof[np.minimum(rr.astype(np.int32), nr - 1)]
        del rr

    sig = float(p["noise_sigma"])
    if sig > 0:
        nz = r_noise.standard_normal((hl, wl), dtype=np.float32)
        nz = cv2.GaussianBlur(nz, (0, 0), 0.5)  # reconstruction-filter correlation
        nz *= np.float32(1.0 / max(float(nz.std()), 1e-6))
        amp = np.maximum(low, 1.0) / CT_LEVELS[QUARTZ]
        amp **= np.float32(p["noise_signal_power"])
        amp *= np.float32(sig * 255)
        nz *= amp
        low += nz
        del nz, amp

    if f > 1:
        interp = cv2.INTER_CUBIC if p["upsample"] == "cubic" else cv2.INTER_LINEAR
        up = cv2.resize(low, (wp, hp), interpolation=interp)[:h, :w]
    else:
        up = low
    np.clip(up, 0, 255, out=up)
    np.rint(up, out=up)
    return up.astype(np.uint8)


def generate_pair(
    height: int,
    width: int,
    seed: int,
    rock: dict[str, Any] | None = None,
    forward: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Registered synthetic pair ``(mct, sem)``, uint8 (height, width), deterministic by seed."""
    rock = dict(rock or {})
    forward = dict(forward or {})
    merge_known(FORWARD_DEFAULTS, forward, "forward")  # fail fast, before the costly SEM
    sem, phases = generate_sem(height, width, seed, **rock)
    mct = simulate_mct(sem, seed + 7919, phases=phases, **forward)
    return mct, sem
