"""The synthetic rock: :func:`generate_sem` paints an SEM-like sandstone and its phase map.

Touching, irregular grains of several minerals with pores, clay, cement, feldspar textures and
cracks, in six steps, one function each: grains (:func:`_grains`), intragranular pore features
(:func:`_feldspar_texture`, :func:`_cracks`, :func:`_contact_gaps`), the cut between grains and
intergranular pore (:func:`_intergranular_cut`), the pore fill (:func:`_fill_pores`), per-grain
shading (:func:`_shade_grains`) and the SEM finish (:func:`_sem_finish`). Each step draws from
its own seeded generators in a fixed order, so every sample is identical bit for bit for
identical arguments. Keyword parameters and defaults: :data:`ROCK_DEFAULTS`
(:mod:`rocksr.data.synthetic_common`). numpy + scipy + OpenCV, float32.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from scipy.spatial import cKDTree
from scipy.special import ndtri

from rocksr.config.merge import merge_known
from rocksr.data.synthetic_common import (
    CALC,
    CLAY,
    DOL,
    HEAVY,
    KFS,
    PLAG,
    PORE,
    QUARTZ,
    ROCK_DEFAULTS,
    SEM_LEVELS,
    smooth_noise,
    spawn_rngs,
)


def _check_size(height: int, width: int) -> tuple[int, int]:
    h, w = int(height), int(width)
    if h != height or w != width or h < 8 or w < 8:
        raise ValueError(f"height and width must be integers >= 8, got {height}x{width}")
    return h, w


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


def _check_rock(p: dict[str, Any]) -> None:
    """Refuse a grain radius below 2 px and pore, clay and cement fractions that leave no rock."""
    if float(p["grain_radius_px"]) < 2:
        raise ValueError("grain_radius_px must be >= 2")
    por = float(p["porosity"])
    clay_f, cem_f = float(p["clay_fraction"]), float(p["cement_fraction"])
    if not 0.0 <= por < 0.9 or clay_f < 0 or cem_f < 0 or por + clay_f + cem_f >= 0.95:
        raise ValueError("need 0 <= porosity, clay_fraction, cement_fraction and sum < 0.95")


def _grains(
    rngs: tuple[np.random.Generator, ...], h: int, w: int, p: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 1, touching irregular grains of log-normal sizes: (grain radii, normalised distance
    to the grain centre per pixel, grain index per pixel (-1 = none), mineral per grain with
    the pore appended, so that ``mineral[lab]`` maps -1 to pore)."""
    r_place, r_shape, r_min, r_rough = rngs
    r_med = float(p["grain_radius_px"])
    cy, cx, rad = _place_grains(
        r_place, h, w, r_med, float(p["radius_log_sd"]), float(p["grain_overlap"])
    )
    d, lab = _paint_grains(
        r_shape, h, w, cy, cx, rad, float(p["elongation"]), float(p["angularity"])
    )
    mineral = np.append(_assign_minerals(r_min, rad, p), np.uint8(PORE))  # lab -1 -> pore
    rough = float(p["boundary_roughness"])
    if rough > 0:
        nz = smooth_noise(r_rough, h, w, max(2.0, r_med / 3))
        nz += 0.5 * smooth_noise(r_rough, h, w, 2.0)
        nz *= np.float32(rough)
        nz += np.float32(1.0)
        d *= nz
        del nz
    jit = float(p["size_jitter"])
    if jit > 0:
        inv_s = np.append(1.0 / (1.0 - jit * r_rough.random(rad.size)), 1.0).astype(np.float32)
        d *= inv_s[lab]
        del inv_s
    return rad, d, lab, mineral


def _feldspar_texture(
    r_feld: np.random.Generator,
    lab: np.ndarray,
    n_grains: int,
    mineral: np.ndarray,
    phases: np.ndarray,
    delta: np.ndarray,
    p: dict[str, Any],
) -> np.ndarray:
    """Step 2a: perthite lamellae in K-feldspar and dissolution pits plus bright remnants in
    altered feldspar; adds the texture to ``delta`` in place and returns the pits (bool)."""
    h, w = lab.shape
    holes = np.zeros((h, w), dtype=bool)
    feld_idx = np.flatnonzero((phases == KFS) | (phases == PLAG))
    if not feld_idx.size:
        return holes
    g = lab.ravel()[feld_idx]
    ang = r_feld.uniform(0, np.pi, n_grains).astype(np.float32)
    lam = r_feld.uniform(4.0, 9.0, n_grains).astype(np.float32)
    altered = r_feld.random(n_grains) < float(p["altered_feldspar_share"])
    alt_level = np.where(altered, r_feld.uniform(0.12, 0.45, n_grains), 0.0)
    yy = (feld_idx // w).astype(np.float32)
    xx = (feld_idx % w).astype(np.float32)
    warp = smooth_noise(r_feld, h, w, 6.0).ravel()[feld_idx]
    stripe = np.sin(
        (xx * np.cos(ang[g]) + yy * np.sin(ang[g])) * (2 * np.pi / lam[g]) + 1.5 * warp
    ).astype(np.float32)
    del yy, xx, warp
    is_k = mineral[g] == KFS
    # perthite: darker albite lamellae in K-feldspar
    delta.ravel()[feld_idx] += np.where(is_k & (stripe > 0.55), -16.0, 0.0).astype(np.float32)
    score = 0.75 * smooth_noise(r_feld, h, w, 2.0).ravel()[feld_idx]
    score += 0.65 * smooth_noise(r_feld, h, w, 7.0).ravel()[feld_idx]
    score += 0.5 * stripe * np.where(is_k, 0.4, 1.0).astype(np.float32)
    sd = float(np.sqrt(0.75**2 + 0.65**2 + 0.125))
    a = alt_level[g]
    thr = np.where(a > 0, ndtri(1.0 - np.clip(a, 1e-6, 1 - 1e-6)) * sd, np.inf)
    holes.ravel()[feld_idx[score > thr]] = True
    # bright remnants / illitised patches in altered grains
    bright = (a > 0) & (score < -1.1 * sd)
    delta.ravel()[feld_idx[bright]] += 24.0
    return holes


def _cracks(
    r_crack: np.random.Generator, phases: np.ndarray, holes: np.ndarray, p: dict[str, Any]
) -> None:
    """Step 2b: thin intragranular cracks in quartz and feldspar, added to ``holes``."""
    crack_density = float(p["crack_density"])
    if crack_density <= 0:
        return
    h, w = phases.shape
    r_med = float(p["grain_radius_px"])
    cs = max(3.0, 1.5 * r_med)
    c = smooth_noise(r_crack, h, w, cs)
    gy, gx = np.gradient(c[: min(h, 256), : min(w, 256)])
    wid = 0.55 * float(np.mean(np.hypot(gy, gx)))
    gate = smooth_noise(r_crack, h, w, max(4.0, 1.5 * r_med))
    np.abs(c, out=c)
    cut = 1.0 - 0.5 * np.log(crack_density)
    cr = (c < wid) & (gate > cut)
    del c, gate
    cr &= (phases == QUARTZ) | (phases == KFS) | (phases == PLAG)
    holes |= cr


def _contact_gaps(
    r_crack: np.random.Generator, lab: np.ndarray, holes: np.ndarray, p: dict[str, Any]
) -> None:
    """Step 2c: dark 1-px gaps along part of the grain contacts, added to ``holes``."""
    if float(p["contact_lines"]) <= 0:
        return
    h, w = lab.shape
    cl = np.zeros((h, w), dtype=bool)
    cl[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    cl[1:, :] |= lab[1:, :] != lab[:-1, :]
    cl &= lab >= 0
    gate = smooth_noise(r_crack, h, w, max(3.0, 0.5 * float(p["grain_radius_px"])))
    cl &= gate > 2.0 - 3.0 * min(1.0, float(p["contact_lines"]))
    holes |= cl


def _intergranular_cut(
    d: np.ndarray, holes: np.ndarray, phases: np.ndarray, p: dict[str, Any]
) -> tuple[np.ndarray, float]:
    """Step 3: the cut of ``d`` between grain and intergranular pore, placed so that the pore
    fraction (with the intragranular ``holes`` inside grains) hits ``porosity``. Sets the
    intergranular space to pore in ``phases`` and takes it out of ``holes`` (both in place);
    returns (intergranular mask, cut)."""
    por = float(p["porosity"])
    clay_f, cem_f = float(p["clay_fraction"]), float(p["cement_fraction"])
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
    return inter, t


def _fill_pores(
    r_fill: np.random.Generator,
    r_tex: np.random.Generator,
    d: np.ndarray,
    t: float,
    inter: np.ndarray,
    phases: np.ndarray,
    delta: np.ndarray,
    p: dict[str, Any],
) -> None:
    """Step 4: calcite cement patches (whole pores) and clay in throats and as coatings in the
    intergranular pore ``inter`` (cut ``t``); ``phases`` and ``delta`` in place."""
    h, w = phases.shape
    n_inter = int(np.count_nonzero(inter))
    clay_f, cem_f = float(p["clay_fraction"]), float(p["cement_fraction"])
    if not (n_inter and (cem_f > 0 or clay_f > 0)):
        return
    r_med = float(p["grain_radius_px"])
    ii = np.flatnonzero(inter)
    big = smooth_noise(r_fill, h, w, max(3.0, 1.2 * r_med)).ravel()[ii]
    if cem_f > 0:
        cthr = _quantile(big, 1.0 - min(1.0, cem_f * h * w / n_inter))
        cem = big > cthr
        phases.ravel()[ii[cem]] = CALC
        delta.ravel()[ii[cem]] += 5.0 * r_fill.standard_normal(int(cem.sum())).astype(np.float32)
        ii, big = ii[~cem], big[~cem]
    if clay_f > 0 and ii.size:
        near = (d.ravel()[ii] - np.float32(t)) * np.float32(4.0 / max(t, 1e-3))
        patch = smooth_noise(r_fill, h, w, max(2.0, 0.4 * r_med)).ravel()[ii]
        score = near - 1.0 * patch - 0.5 * big
        kthr = _quantile(score, min(1.0, clay_f * h * w / ii.size))
        cl = ii[score <= kthr]
        phases.ravel()[cl] = CLAY
        del near, patch, score
        _clay_texture(r_tex, cl, phases, delta)


def _clay_texture(
    r_tex: np.random.Generator, cl: np.ndarray, phases: np.ndarray, delta: np.ndarray
) -> None:
    """Speckle, micro-pores and pyrite framboid dots on the clay pixels ``cl`` (flat indices);
    ``phases`` and ``delta`` in place."""
    h, w = phases.shape
    sp = r_tex.standard_normal(cl.size).astype(np.float32)
    mp = r_tex.standard_normal(cl.size).astype(np.float32)
    mot = smooth_noise(r_tex, h, w, 3.0).ravel()[cl]
    delta.ravel()[cl] += 20.0 * sp + 16.0 * mot - np.where(mp > 1.2, 60.0, 0.0).astype(np.float32)
    del mot
    phases.ravel()[cl[sp > 3.1]] = HEAVY


def _shade_grains(
    r_tex: np.random.Generator,
    lab: np.ndarray,
    n_grains: int,
    phases: np.ndarray,
    delta: np.ndarray,
) -> None:
    """Step 5: subtle per-grain grey variation (orientation / composition) and a mottle on
    dolomite; ``delta`` in place."""
    h, w = phases.shape
    goff = np.append(r_tex.normal(0.0, 1.5, n_grains), 0.0).astype(np.float32)
    solid = (phases != PORE) & (phases != CLAY)
    delta[solid] += goff[lab[solid]]
    del solid
    dol = phases == DOL
    if dol.any():
        delta[dol] += 5.0 * smooth_noise(r_tex, h, w, 4.0)[dol]


def _sem_finish(
    r_noise: np.random.Generator, phases: np.ndarray, delta: np.ndarray, p: dict[str, Any]
) -> np.ndarray:
    """Step 6: grey levels plus texture, a slight blur and noise, as uint8."""
    h, w = phases.shape
    sem = SEM_LEVELS[phases]
    sem += delta
    if float(p["sem_blur"]) > 0:
        sem = cv2.GaussianBlur(sem, (0, 0), float(p["sem_blur"]), borderType=cv2.BORDER_REFLECT)
    if float(p["sem_noise"]) > 0:
        sem += np.float32(p["sem_noise"]) * r_noise.standard_normal((h, w), dtype=np.float32)
    np.clip(sem, 0, 255, out=sem)
    out = np.empty((h, w), dtype=np.uint8)
    np.rint(sem, out=sem)
    out[...] = sem
    return out


def generate_sem(height: int, width: int, seed: int, **rock: Any) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic BSE-SEM image of a sandstone and its phase label map (ids in ``PHASES``).

    Keyword parameters and defaults: ``ROCK_DEFAULTS``. Returns ``(sem, phases)``, both
    uint8 of shape (height, width); identical for identical arguments.
    """
    p = merge_known(ROCK_DEFAULTS, rock, "rock")
    h, w = _check_size(height, width)
    _check_rock(p)
    (r_place, r_shape, r_min, r_rough, r_fill, r_feld, r_crack, r_tex, r_noise, r_pit) = spawn_rngs(
        seed, 10, 0x5E1
    )
    # 1. grains: touching, irregular, log-normal sizes
    rad, d, lab, mineral = _grains((r_place, r_shape, r_min, r_rough), h, w, p)
    phases = mineral[lab]  # uint8, lab == -1 picks the appended pore
    delta = np.zeros((h, w), dtype=np.float32)  # SEM texture added to SEM_LEVELS[phase]
    # 2. intragranular pore features (pits, cracks, contact gaps): flagged, set to pore last
    holes = _feldspar_texture(r_feld, lab, rad.size, mineral, phases, delta, p)
    _cracks(r_crack, phases, holes, p)
    _contact_gaps(r_crack, lab, holes, p)
    # 3. grain / intergranular cut so that the pore fraction hits `porosity`
    inter, t = _intergranular_cut(d, holes, phases, p)
    # 4. pore fill (cement, clay), then dissolution pits in quartz; every hole becomes pore
    _fill_pores(r_fill, r_tex, d, t, inter, phases, delta, p)
    del inter, d
    pits = smooth_noise(r_pit, h, w, 2.0) > 3.1
    pits &= phases == QUARTZ
    holes |= pits
    del pits
    phases[holes] = PORE
    del holes
    # 5. per-grain grey variation; 6. SEM finish
    _shade_grains(r_tex, lab, rad.size, phases, delta)
    del lab
    return _sem_finish(r_noise, phases, delta, p), phases
