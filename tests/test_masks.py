"""Valid-area masks (rocksr.data.masks): a circular field of view is found, normalization looks
only inside it, and no kept tile's footprint leaves it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from rocksr.config.pair_settings import PairSettings
from rocksr.data.example_pairs import coarse_fov_mct
from rocksr.data.images import ImageError
from rocksr.data.masks import (
    FOV_MARGIN_PX,
    auto_fov,
    disc,
    read_mask,
    sample_mask,
)
from rocksr.data.synthetic import generate_pair
from rocksr.data.tilestore import plan_dataset
from rocksr.data.tiling import outside_integral, rect_inside
from rocksr.stages.build_dataset import build_dataset
from rocksr.stages.normalize import normalize_pair


def _fov_slice(h: int, w: int, centre: tuple[float, float], radius: float, seed: int = 3):
    """A synthetic 16-bit micro-CT slice with a dark (0) surround outside a disc."""
    mct, sem = generate_pair(h, w, seed, rock={"grain_radius_px": 14})
    out = (1000 + 200 * mct.astype(np.int64)).astype(np.uint16)
    out[~disc((h, w), centre, radius)] = 0
    return out, sem


@pytest.mark.parametrize(
    ("shape", "centre", "radius"),
    [((256, 256), (127.5, 127.5), 120.0), ((240, 300), (118.0, 160.0), 100.0)],
)
def test_auto_fov_finds_the_disc_within_a_few_pixels(shape, centre, radius) -> None:
    mct, _ = _fov_slice(*shape, centre, radius)
    fov = auto_fov(mct, "slice.tif")
    cy, cx = fov["centre_yx"]
    assert abs(cy - centre[0]) <= 1.5 and abs(cx - centre[1]) <= 1.5, fov
    # the largest inscribed disc, kept FOV_MARGIN_PX inside the rim
    assert radius - FOV_MARGIN_PX - 2 <= fov["radius_px"] <= radius - FOV_MARGIN_PX + 1, fov
    assert fov["background_value"] == 0.0
    found = disc(shape, (cy, cx), fov["radius_px"])
    assert not np.any(found & (mct == 0) & ~disc(shape, centre, radius - 1))  # inside only


@pytest.mark.parametrize("side", [63, 64])
def test_a_centred_fov_is_found_exactly_centred_on_both_grids(side) -> None:
    """A disc centred on the image (odd side: on a pixel; even side: between four) is found
    with its exact centre, and redrawn on a 3x finer grid at that grid's exact centre."""
    mid = (side - 1) / 2
    mct = np.full((side, side), 5000, np.uint16)
    mct[~disc(mct.shape, (mid, mid), 0.45 * side)] = 0
    fov = auto_fov(mct, "slice.tif")
    assert fov["centre_yx"] == [mid, mid]
    assert 0 <= fov["radius_px"] - (0.45 * side - FOV_MARGIN_PX) <= 1  # nearest outside pixel
    _, info = sample_mask("auto_fov", mct, (3 * side, 3 * side), 3, None, "pair")
    assert info["centre_yx"] == [(3 * side - 1) / 2] * 2
    assert info["covers"] > 0.8  # the margin: (r - 2)² / r²


def test_a_rectangular_reconstruction_warns_that_the_disc_keeps_little(tmp_path) -> None:
    mct, sem = generate_pair(128, 256, 2, rock={"grain_radius_px": 10})
    raw = np.zeros((160, 300), np.uint16)
    raw[16:144, 22:278] = 1000 + mct.astype(np.uint16)
    sem_full = np.zeros((160, 300), np.uint8)
    sem_full[16:144, 22:278] = sem
    tifffile.imwrite(tmp_path / "m.tif", raw)
    tifffile.imwrite(tmp_path / "s.tif", sem_full)
    report = normalize_pair(
        tmp_path / "m.tif",
        tmp_path / "s.tif",
        tmp_path / "o1.tif",
        tmp_path / "o2.tif",
        tmp_path / "r.json",
        {},
        settings=PairSettings(mask="auto_fov"),
    )
    assert report["mask"]["covers"] < 0.6
    assert any("is not a circular field of view" in w for w in report["warnings"])


def test_auto_fov_ignores_pores_that_touch_the_background_value() -> None:
    mct, _ = _fov_slice(256, 256, (127.5, 127.5), 120.0)
    mct[100:130, 90:140] = 0  # a dark pore region inside the reconstruction
    fov = auto_fov(mct, "slice.tif")
    assert fov["radius_px"] >= 120.0 - FOV_MARGIN_PX - 2


def test_auto_fov_refuses_an_image_without_a_constant_surround() -> None:
    mct, _ = generate_pair(128, 128, 1, rock={"grain_radius_px": 12})
    with pytest.raises(ImageError, match=r"slice\.tif: mask auto_fov: no constant surround"):
        auto_fov(mct, "slice.tif")
    with pytest.raises(ImageError, match="no reconstructed area"):
        auto_fov(np.zeros((64, 64), np.uint16), "blank.tif")


def test_auto_fov_on_a_coarse_micro_ct_lands_on_the_sem_grid() -> None:
    """The FOV found on a 4x coarser micro-CT, redrawn on the SEM grid, matches the disc drawn
    on the SEM grid directly within a few SEM pixels, and the crop moves it."""
    mct, _ = generate_pair(256, 256, 4, rock={"grain_radius_px": 14})
    coarse, fov = coarse_fov_mct(mct, 4, 0.9)
    mask, info = sample_mask("auto_fov", coarse, (256, 256), 4, None, "pair")
    true_centre = [(c + 0.5) * 4 - 0.5 for c in fov["centre_yx"]]
    assert np.allclose(info["centre_yx"], true_centre, atol=4.5), info
    assert 4 * fov["radius_px"] - 4 * (FOV_MARGIN_PX + 2) <= info["radius_px"]
    assert info["radius_px"] <= 4 * fov["radius_px"]
    cropped, _ = sample_mask("auto_fov", coarse, (256, 256), 4, [16, 32, 200, 180], "pair")
    assert np.array_equal(cropped, mask[16:216, 32:212])


def test_a_mask_image_on_either_grid(tmp_path) -> None:
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 5:25] = 1
    tifffile.imwrite(tmp_path / "m.tif", m)
    assert read_mask(tmp_path / "m.tif", (20, 30), (20, 30), 1).sum() == 200
    up = read_mask(tmp_path / "m.tif", (60, 90), (20, 30), 3)  # micro-CT grid, repeated
    assert up.shape == (60, 90) and up.sum() == 200 * 9
    with pytest.raises(ImageError, match=r"m\.tif: mask is 20x30, but it must have the SEM's"):
        read_mask(tmp_path / "m.tif", (40, 30), (20, 30), 1)
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((20, 30), np.uint8))
    with pytest.raises(ImageError, match=r"empty\.tif: the mask is empty"):
        read_mask(tmp_path / "empty.tif", (20, 30), (20, 30), 1)


def test_rect_inside() -> None:
    valid = outside_integral(disc((50, 50), (24.5, 24.5), 20))
    assert rect_inside(valid, 20, 20, 10, 10)
    assert not rect_inside(valid, 0, 0, 10, 10)
    assert not rect_inside(valid, 45, 20, 10, 10)  # leaves the image


@pytest.mark.parametrize("edge", ["unrotated", "skip"])
def test_no_kept_footprint_leaves_the_mask(edge) -> None:
    h, w, size = 400, 360, 32
    mask = disc((h, w), (190.0, 175.0), 160.0)
    manifest, dropped = plan_dataset([("a", h, w)], size, 16, [0.0, 30.0], edge, {"a": mask})
    assert len(manifest)
    for fy, fx, fs in manifest[["footprint_y0", "footprint_x0", "footprint_size"]].itertuples(
        index=False
    ):
        assert mask[fy : fy + fs, fx : fx + fs].all()
    # every grid tile is either kept or dropped, once
    grid = {(r, c) for r in range(len(range(0, h - size + 1, 16))) for c in range(21)}
    kept = set(map(tuple, manifest[["grid_row", "grid_col"]].drop_duplicates().to_numpy()))
    gone = set(map(tuple, dropped[["grid_row", "grid_col"]].to_numpy()))
    assert not kept & gone and kept | gone == grid
    reasons = set(dropped["reason"])
    if edge == "unrotated":  # a tile that fits keeps its angle-0 view
        assert reasons == {"outside_mask"}
        assert (manifest["view"] == "edge_unrotated").sum() > 0
    else:  # the mask's border drops tiles whose footprint leaves it
        assert reasons == {"outside_mask", "footprint_leaves_mask"}
        assert (manifest["view"] == "rotated").all()
    full, full_dropped = plan_dataset([("a", h, w)], size, 16, [0.0, 30.0], edge)
    assert len(full) > len(manifest)
    assert set(full_dropped["reason"]) == (
        set() if edge == "unrotated" else {"footprint_leaves_image"}
    )


def _write_fov_pair(folder, outside: int):
    """A pair whose micro-CT has a 0 surround; SEM pixels outside the FOV set to ``outside``."""
    mct, sem = _fov_slice(240, 240, (119.5, 119.5), 112.0, seed=5)
    sem = sem.copy()
    sem[~disc(sem.shape, (119.5, 119.5), 112.0)] = outside
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "mct.tif", mct)
    Image.fromarray(sem).save(folder / "sem.png")
    return folder / "mct.tif", folder / "sem.png"


def test_normalization_ignores_the_outside(tmp_path) -> None:
    """With mask auto_fov the percentiles, and so every pixel inside the FOV, do not depend on
    what lies outside it; without a mask the zero surround sets the micro-CT's black point."""
    outs = {}
    for outside in (0, 255):
        mct, sem = _write_fov_pair(tmp_path / f"raw{outside}", outside)
        o = tmp_path / f"n{outside}"
        report = normalize_pair(
            mct,
            sem,
            o / "mct.tif",
            o / "sem.tif",
            o / "n.json",
            {},
            settings=PairSettings(mask="auto_fov"),
            out_mask=o / "mask.png",
        )
        outs[outside] = (
            report,
            tifffile.imread(o / "sem.tif"),
            np.array(Image.open(o / "mask.png")),
        )
    (r0, s0, m0), (r1, s1, m1) = outs[0], outs[255]
    assert np.array_equal(m0, m1) and set(np.unique(m0)) == {0, 255}
    inside = m0 > 0
    assert r0["sem"]["stretch_black"] == r1["sem"]["stretch_black"]
    assert r0["sem"]["stretch_white"] == r1["sem"]["stretch_white"]
    assert np.array_equal(s0[inside], s1[inside])
    assert r0["mask"]["mode"] == "auto_fov" and 0.6 < r0["mask"]["inside_fraction"] < 0.8
    assert r0["mct"]["stretch_black"] > 0  # the zero surround is not the black point
    plain = normalize_pair(
        mct, sem, tmp_path / "p" / "mct.tif", tmp_path / "p" / "sem.tif", tmp_path / "p.json", {}
    )
    assert plain["mct"]["stretch_black"] == 0.0 and plain["mask"] == {"mode": "none"}


def test_a_masked_dataset_counts_its_dropped_tiles(tmp_path) -> None:
    mct, sem = _write_fov_pair(tmp_path / "raw", 0)
    n = tmp_path / "n"
    normalize_pair(
        mct,
        sem,
        n / "mct.tif",
        n / "sem.tif",
        n / "n.json",
        {},
        settings=PairSettings(mask="auto_fov"),
        out_mask=n / "mask.png",
    )
    tiling = {"size": 32, "stride": 16, "angles": [0, 45], "edge_tiles": "unrotated"}
    manifest = build_dataset(
        [("a", n / "mct.tif", n / "sem.tif")],
        tmp_path / "tiles.zarr",
        tmp_path / "manifest.csv",
        tiling,
        {"workers": 1},
        out_dropped=tmp_path / "dropped.csv",
        masks=[n / "mask.png"],
        mask_modes=["auto_fov"],
        progress=False,
    )
    mask = np.array(Image.open(n / "mask.png")) > 0
    for fy, fx, fs in manifest[["footprint_y0", "footprint_x0", "footprint_size"]].itertuples(
        index=False
    ):
        assert mask[fy : fy + fs, fx : fx + fs].all()
    dropped = pd.read_csv(tmp_path / "dropped.csv")
    assert (dropped["reason"] == "outside_mask").sum() > 0
    import zarr

    attrs = dict(zarr.open_group(str(tmp_path / "tiles.zarr"), mode="r").attrs)
    counts = attrs["base_tiles"]["a"]
    assert counts["outside_mask"] == (dropped["reason"] == "outside_mask").sum()
    assert counts["kept"] == len(manifest.drop_duplicates(["grid_row", "grid_col"]))
    assert attrs["normalization"]["within"] == "auto_fov"
    assert attrs["sources"]["a"]["mask"].endswith("mask.png")


def test_a_mask_that_holds_no_tile_is_an_error_naming_it(tmp_path) -> None:
    mct, sem = _write_fov_pair(tmp_path / "raw", 0)
    n = tmp_path / "n"
    normalize_pair(mct, sem, n / "mct.tif", n / "sem.tif", n / "n.json", {})
    small = np.zeros((240, 240), np.uint8)
    small[100:140, 100:140] = 255
    Image.fromarray(small).save(n / "mask.png")
    tiling = {"size": 64, "stride": 32, "angles": [0], "edge_tiles": "skip"}
    with pytest.raises(ImageError, match=r"mask\.png: sample 'a': none of its \d+ base tiles"):
        build_dataset(
            [("a", n / "mct.tif", n / "sem.tif")],
            tmp_path / "tiles.zarr",
            tmp_path / "manifest.csv",
            tiling,
            {"workers": 1},
            masks=[n / "mask.png"],
            progress=False,
        )
    assert not (tmp_path / "tiles.zarr").exists() and not (tmp_path / "manifest.csv").exists()


def test_the_normalize_report_is_json(tmp_path) -> None:
    mct, sem = _write_fov_pair(tmp_path / "raw", 0)
    normalize_pair(
        mct,
        sem,
        tmp_path / "m.tif",
        tmp_path / "s.tif",
        tmp_path / "r.json",
        {},
        settings=PairSettings(mask="auto_fov"),
    )
    rec = json.loads((tmp_path / "r.json").read_text())
    assert rec["mask"]["mode"] == "auto_fov" and len(rec["mask"]["centre_yx"]) == 2


def test_split_counts_and_split_map_show_the_dropped_tiles(tmp_path) -> None:
    from rocksr.data.splits import make_splits, split_counts
    from rocksr.figures.split_map import OUTSIDE_MASK, split_map_figure

    h = w = 320
    mask = disc((h, w), (159.5, 159.5), 150.0)
    manifest, dropped = plan_dataset([("a", h, w)], 32, 16, [0.0, 45.0], "unrotated", {"a": mask})
    splits = make_splits(manifest, "regions", {"train": 0.6, "val": 0.2, "test": 0.2}, 0)
    counts = split_counts(manifest, splits, dropped).set_index("split")
    assert (
        counts.loc["dropped: outside_mask", "base_tiles"]
        == (dropped["reason"] == "outside_mask").sum()
        > 0
    )
    assert pd.isna(counts.loc["dropped: outside_mask", "views"])
    split_map_figure(manifest, splits, tmp_path / "map.png", masks={"a": mask}, dropped=dropped)
    rgb = np.array(Image.open(tmp_path / "map.png").convert("RGB")).reshape(-1, 3)
    grey = np.round(np.array(OUTSIDE_MASK) * 255)
    assert (np.abs(rgb - grey).max(axis=1) <= 2).sum() > 1000  # the outside is drawn


REAL_CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "versa_microct"


@pytest.mark.skipif(not REAL_CT.is_dir(), reason="../shared/data/real is absent")
def test_auto_fov_on_real_micro_ct_slices() -> None:
    """Real Zeiss Versa slices of a sandstone plug (zero outside the reconstruction circle):
    the disc holds almost none of the zero surround and almost all of the reconstruction."""
    for path in sorted(REAL_CT.glob("*.tif"))[::4]:
        ct = tifffile.imread(path)
        fov = auto_fov(ct, str(path))
        inside = disc(ct.shape, fov["centre_yx"], fov["radius_px"])
        surround = (ct == 0) & ~ndimage.binary_fill_holes(ct != 0)
        assert (inside & surround).sum() == 0, path.name
        assert fov["covers"] > 0.9, (path.name, fov)
