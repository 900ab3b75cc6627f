"""Tests for the built-in synthetic paired sample and the micro-CT forward model."""

from __future__ import annotations

import numpy as np
import pytest

from rocksr.data.synthetic import (
    CT_LEVELS,
    DOL,
    FORWARD_DEFAULTS,
    PHASES,
    PORE,
    QUARTZ,
    ROCK_DEFAULTS,
    SEM_LEVELS,
    generate_pair,
    generate_sem,
    simulate_mct,
)

SMALL = {"grain_radius_px": 14.0}


@pytest.fixture(scope="module")
def pair256() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sem, phases = generate_sem(256, 256, 3, **SMALL, dolomite_fraction=0.15)
    mct = simulate_mct(sem, 4, phases=phases)
    return sem, phases, mct


def test_deterministic_by_seed() -> None:
    a = generate_pair(160, 192, 5, rock=SMALL)
    b = generate_pair(160, 192, 5, rock=SMALL)
    c = generate_pair(160, 192, 6, rock=SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("shape", [(257, 300), (131, 97), (64, 64)])
@pytest.mark.parametrize("factor", [1, 3, 4])
def test_shapes_and_dtypes_odd_sizes(shape: tuple[int, int], factor: int) -> None:
    mct, sem = generate_pair(
        *shape, 0, rock={"grain_radius_px": 10.0}, forward={"partial_volume_factor": factor}
    )
    assert mct.shape == sem.shape == shape
    assert mct.dtype == sem.dtype == np.uint8


def test_phase_fractions_plausible() -> None:
    for por in (0.1, 0.2):
        _, phases = generate_sem(384, 320, 11, **SMALL, porosity=por)
        frac = np.bincount(phases.ravel(), minlength=len(PHASES)) / phases.size
        assert abs(frac[PORE] - por) < 0.03, frac
        assert frac[QUARTZ] > 0.4
        assert phases.max() < len(PHASES)
        assert (frac > 0).sum() >= 5  # several mineral phases present


def test_sem_levels_per_phase(pair256: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    sem, phases, _ = pair256
    assert sem[phases == PORE].mean() < 80
    assert abs(np.median(sem[phases == QUARTZ]) - SEM_LEVELS[QUARTZ]) < 8


def test_mct_not_monotone_in_sem(pair256: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Dolomite is darker than quartz in SEM but brighter in micro-CT."""
    sem, phases, mct = pair256
    assert SEM_LEVELS[DOL] < SEM_LEVELS[QUARTZ] and CT_LEVELS[DOL] > CT_LEVELS[QUARTZ]
    sem_q, sem_d = np.median(sem[phases == QUARTZ]), np.median(sem[phases == DOL])
    ct_q, ct_d = np.median(mct[phases == QUARTZ]), np.median(mct[phases == DOL])
    assert sem_d < sem_q and ct_d > ct_q + 15
    # and the ranking of phases by mean brightness differs between the two images
    present = [k for k in range(len(PHASES)) if (phases == k).sum() > 200]
    s_rank = np.argsort([sem[phases == k].mean() for k in present])
    c_rank = np.argsort([mct[phases == k].mean() for k in present])
    assert not np.array_equal(s_rank, c_rank)


def test_simulate_mct_without_phases_on_arbitrary_image() -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((150, 211)) * 255).astype(np.uint8)
    out = simulate_mct(img, 1)
    assert out.shape == img.shape and out.dtype == np.uint8
    flat = np.full((64, 64), 100, dtype=np.uint8)
    assert simulate_mct(flat, 0).shape == flat.shape
    sem, _ = generate_sem(200, 200, 2, **SMALL)
    seg = simulate_mct(sem, 3)  # segmented, not given phases
    assert np.corrcoef(seg.ravel().astype(float), sem.ravel().astype(float))[0, 1] > 0.6


def test_unknown_keys_raise() -> None:
    with pytest.raises(ValueError, match="grain_size"):
        generate_sem(64, 64, 0, grain_size=3)
    with pytest.raises(ValueError, match="psf"):
        simulate_mct(np.zeros((32, 32), np.uint8), 0, psf=2.0)
    with pytest.raises(ValueError, match="bogus"):
        generate_pair(64, 64, 0, forward={"bogus": 1})
    with pytest.raises(ValueError, match="porosity"):  # valid keys are listed
        generate_pair(64, 64, 0, rock={"bogus": 1})


def test_defaults_documented() -> None:
    assert ROCK_DEFAULTS["grain_radius_px"] > 0 and 0 < ROCK_DEFAULTS["porosity"] < 1
    assert FORWARD_DEFAULTS["partial_volume_factor"] == 4
    assert FORWARD_DEFAULTS["misregistration_px"] == 0


def _high_freq_energy(img: np.ndarray, cutoff: float) -> float:
    a = img.astype(np.float64) - img.mean()
    f = np.abs(np.fft.fft2(a)) ** 2
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    return float(f[np.hypot(fy, fx) > cutoff].sum() / f.sum())


def test_partial_volume_removes_high_frequencies(
    pair256: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    sem, phases, _ = pair256
    quiet = {"psf_sigma": 0.0, "noise_sigma": 0.0, "cupping": 0.0, "rings": 0.0}
    e = [
        _high_freq_energy(
            simulate_mct(sem, 0, phases=phases, partial_volume_factor=f, **quiet), 0.15
        )
        for f in (1, 4, 8)
    ]
    assert e[1] < 0.5 * e[0] and e[2] < e[1]
    assert _high_freq_energy(sem, 0.15) > e[1]


def test_misregistration_moves_image(pair256: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    sem, phases, _ = pair256
    a = simulate_mct(sem, 0, phases=phases, noise_sigma=0.0)
    b = simulate_mct(sem, 0, phases=phases, noise_sigma=0.0, misregistration_px=3.0)
    assert a.shape == b.shape and not np.array_equal(a, b)
