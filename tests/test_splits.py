import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rocksr.data.splits import (
    assign_holdout,
    assign_regions,
    leakage,
    make_splits,
    split_counts,
)
from rocksr.data.tilestore import build_manifest

FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}
STUDY_FRACTIONS = {"train": 0.65, "val": 0.13, "test": 0.22}
STUDY_ANGLES = [float(a) for a in range(0, 360, 20)]


def _pairwise_footprint_overlap(manifest: pd.DataFrame, splits: pd.DataFrame) -> int:
    """Independent brute-force check: overlapping footprint rectangles across splits."""
    m = manifest.merge(splits, on="tile_id")
    m = m[m["split"] != "excluded"].drop_duplicates(
        ["sample", "footprint_y0", "footprint_x0", "footprint_size", "split"]
    )
    bad = 0
    for _, g in m.groupby("sample"):
        y0 = g["footprint_y0"].to_numpy()
        x0 = g["footprint_x0"].to_numpy()
        s = g["footprint_size"].to_numpy()
        lab = g["split"].to_numpy()
        oy = (y0[:, None] < (y0 + s)[None, :]) & (y0[None, :] < (y0 + s)[:, None])
        ox = (x0[:, None] < (x0 + s)[None, :]) & (x0[None, :] < (x0 + s)[:, None])
        bad += int((oy & ox & (lab[:, None] != lab[None, :])).sum())
    return bad


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(100, 420),
    w=st.integers(100, 420),
    size=st.integers(16, 80),
    stride_frac=st.floats(0.4, 1.5),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    train=st.floats(0.1, 1.0),
    val=st.floats(0.0, 1.0),
    test=st.floats(0.05, 1.0),
    edge=st.sampled_from(["unrotated", "skip"]),
    seed=st.integers(0, 5),
)
def test_block_splits_are_footprint_disjoint(
    h, w, size, stride_frac, rows, cols, train, val, test, edge, seed
):
    stride = max(1, int(size * stride_frac))
    manifest = build_manifest([("a", h, w)], size, stride, [0.0, 30.0], edge)
    assume(len(manifest) > 0)
    fractions = {"train": train, "val": val, "test": test}
    try:
        splits = make_splits(
            manifest, "blocks", fractions, seed, blocks={"rows": rows, "cols": cols}
        )
    except ValueError:
        assume(False)
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0
    assert _pairwise_footprint_overlap(manifest, splits) == 0
    counts = split_counts(manifest, splits)
    assert counts["views"].sum() == len(manifest)
    assert set(splits["split"]) <= {"train", "val", "test", "excluded"}
    np.testing.assert_array_equal(splits["tile_id"], manifest["tile_id"])


def test_random_split_leaks_and_the_checks_see_it():
    manifest = build_manifest([("a", 800, 800)], 64, 32, [0.0, 45.0, 90.0], "unrotated")
    splits = make_splits(manifest, "random", FRACTIONS, seed=0)
    assert leakage(manifest, splits)["shared_pixels"].sum() > 0
    assert _pairwise_footprint_overlap(manifest, splits) > 0
    counts = split_counts(manifest, splits).set_index("split")["views"]
    assert counts.sum() == len(manifest) and counts["excluded"] == 0
    assert abs(counts["train"] / len(manifest) - 0.6) < 0.01


def test_block_split_approaches_fractions_at_study_geometry():
    manifest = build_manifest([("drp", 6100, 6100)], 512, 128, [0.0, 20.0], "unrotated")
    splits = make_splits(manifest, "blocks", FRACTIONS, 0, blocks={"rows": 3, "cols": 3})
    c = split_counts(manifest, splits).set_index("split")
    assert c.loc["test", "views"] > 0 and c.loc["val", "views"] > 0
    assert abs(c.loc["train", "fraction_of_assigned"] - 0.6) < 0.15
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0


def test_splits_are_deterministic_and_seed_dependent():
    manifest = build_manifest([("a", 900, 900)], 64, 32, [0.0], "unrotated")
    a = make_splits(manifest, "blocks", FRACTIONS, 1, blocks={"rows": 4, "cols": 4})
    b = make_splits(manifest, "blocks", FRACTIONS, 1, blocks={"rows": 4, "cols": 4})
    pd.testing.assert_frame_equal(a, b)
    # another seed assigns the blocks differently
    c = make_splits(manifest, "blocks", FRACTIONS, 2, blocks={"rows": 4, "cols": 4})
    assert not a["split"].equals(c["split"])


def test_holdout_sample_split():
    manifest = build_manifest(
        [("a", 200, 200), ("b", 200, 200), ("c", 200, 200)], 64, 32, [0.0], "skip"
    )
    splits = make_splits(
        manifest, "holdout_sample", FRACTIONS, 0, holdout={"val": ["b"], "test": ["c"]}
    )
    m = manifest.merge(splits, on="tile_id")
    assert set(m.loc[m["sample"] == "a", "split"]) == {"train"}
    assert set(m.loc[m["sample"] == "b", "split"]) == {"val"}
    assert set(m.loc[m["sample"] == "c", "split"]) == {"test"}
    with pytest.raises(ValueError, match="not in the manifest"):
        assign_holdout(manifest, {"test": ["zzz"]})
    with pytest.raises(ValueError, match="both"):
        assign_holdout(manifest, {"val": ["b"], "test": ["b"]})


def test_too_few_blocks_give_a_clear_error():
    manifest = build_manifest([("a", 300, 300)], 64, 32, [0.0, 45.0], "skip")
    with pytest.raises(ValueError, match="too few"):
        make_splits(manifest, "blocks", FRACTIONS, 0, blocks={"rows": 1, "cols": 2})
    with pytest.raises(ValueError, match="unknown split strategy"):
        make_splits(manifest, "nearest", FRACTIONS, 0)


def _shares(manifest: pd.DataFrame, splits: pd.DataFrame) -> tuple[float, pd.Series]:
    c = split_counts(manifest, splits).set_index("split")
    return 1 - c.loc["excluded", "views"] / len(manifest), c["fraction_of_assigned"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dims=st.lists(st.tuples(st.integers(100, 420), st.integers(100, 420)), min_size=1, max_size=3),
    size=st.integers(16, 80),
    stride_frac=st.floats(0.4, 1.5),
    train=st.floats(0.1, 1.0),
    val=st.floats(0.0, 1.0),
    test=st.floats(0.05, 1.0),
    edge=st.sampled_from(["unrotated", "skip"]),
    seed=st.integers(0, 5),
)
def test_region_splits_are_footprint_disjoint(
    dims, size, stride_frac, train, val, test, edge, seed
):
    stride = max(1, int(size * stride_frac))
    samples = [(f"s{i}", h, w) for i, (h, w) in enumerate(dims)]
    manifest = build_manifest(samples, size, stride, [0.0, 30.0], edge)
    assume(len(manifest) > 0)
    fractions = {"train": train, "val": val, "test": test}
    splits = make_splits(manifest, "regions", fractions, seed)
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0
    assert _pairwise_footprint_overlap(manifest, splits) == 0
    counts = split_counts(manifest, splits)
    assert counts["views"].sum() == len(manifest)
    assert counts.loc[counts["split"] != "excluded", "views"].sum() > 0
    assert set(splits["split"]) <= {"train", "val", "test", "excluded"}
    np.testing.assert_array_equal(splits["tile_id"], manifest["tile_id"])


def test_region_split_meets_the_targets_at_study_geometry():
    manifest = build_manifest([("drp", 6100, 6100)], 512, 128, STUDY_ANGLES, "unrotated")
    assert len(manifest) == 31924
    splits = make_splits(manifest, "regions", STUDY_FRACTIONS, 0)
    kept, shares = _shares(manifest, splits)
    assert kept >= 0.75
    for name, f in STUDY_FRACTIONS.items():
        assert abs(shares[name] - f) <= 0.02, (name, shares[name])
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0
    blocks = make_splits(manifest, "blocks", STUDY_FRACTIONS, 0, blocks={"rows": 3, "cols": 3})
    assert kept > _shares(manifest, blocks)[0]
    pd.testing.assert_frame_equal(splits, make_splits(manifest, "regions", STUDY_FRACTIONS, 0))


def test_region_split_keeps_every_view_inside_its_rectangle():
    manifest = build_manifest([("a", 1024, 1024)], 128, 64, [0.0, 45.0], "unrotated")
    labels, rects = assign_regions(manifest, FRACTIONS, 3)
    y0, y1, x0, x1 = np.asarray(rects["a"]).T
    assert np.all((y0 <= y1) & (x0 <= x1))
    for s, name in enumerate(("train", "val", "test")):
        sel = manifest[labels == name]
        assert len(sel) > 0
        assert (sel["footprint_y0"] >= y0[s]).all() and (sel["footprint_x0"] >= x0[s]).all()
        assert (sel["footprint_y0"] + sel["footprint_size"] <= y1[s]).all()
        assert (sel["footprint_x0"] + sel["footprint_size"] <= x1[s]).all()
    for a, b in ((0, 1), (0, 2), (1, 2)):  # the three rectangles are disjoint
        assert min(y1[a], y1[b]) <= max(y0[a], y0[b]) or min(x1[a], x1[b]) <= max(x0[a], x0[b])


def test_many_small_pairs_go_mostly_whole_into_one_split():
    """21 pairs of 256² (the size of a public TXM/SEM set) with 64 px tiles: cutting each in
    three would waste most of them; whole samples dealt to the splits keep nearly all."""
    manifest = build_manifest(
        [(f"s{i}", 256, 256) for i in range(21)], 64, 32, [0.0, 45.0], "unrotated"
    )
    splits = make_splits(manifest, "regions", FRACTIONS, 0)
    kept, shares = _shares(manifest, splits)
    assert kept >= 0.95
    for name, f in FRACTIONS.items():
        assert abs(shares[name] - f) <= 0.02, (name, shares[name])
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0


def test_region_split_balances_several_samples():
    samples = [("a", 1024, 1024), ("b", 800, 1200), ("c", 600, 600)]
    manifest = build_manifest(samples, 128, 64, [float(a) for a in range(0, 360, 45)], "unrotated")
    splits = make_splits(manifest, "regions", FRACTIONS, 0)
    kept, shares = _shares(manifest, splits)
    # whole samples in one split are options too: 83.9 % kept (every sample cut in three: 77.4 %)
    assert kept >= 0.83
    for name, f in FRACTIONS.items():
        assert abs(shares[name] - f) <= 0.02, (name, shares[name])
    assert leakage(manifest, splits)["shared_pixels"].sum() == 0
    # three equal samples: the study's totals are balanced, not one sample's best repeated
    demo_angles = [float(a) for a in range(0, 360, 45)]
    one = build_manifest([("a", 1024, 1024)], 128, 64, demo_angles, "unrotated")
    three = build_manifest([(n, 1024, 1024) for n in "abc"], 128, 64, demo_angles, "unrotated")
    target = pd.Series(FRACTIONS)
    dev_one = _shares(one, make_splits(one, "regions", FRACTIONS, 0))[1] - target
    dev_three = _shares(three, make_splits(three, "regions", FRACTIONS, 0))[1] - target
    assert dev_three.abs().max() < dev_one.abs().max()


def test_no_wanted_split_is_left_empty_when_the_views_allow_it():
    """Three samples of one view each and fractions .8/.1/.1: one view per split (before, the
    balancing stopped at 3/0/0, an empty val and test, both counted as one 'empty' layout)."""
    manifest = build_manifest([(n, 91, 91) for n in "abc"], 64, 32, [0.0], "unrotated")
    assert len(manifest) == 3
    splits = make_splits(manifest, "regions", {"train": 0.8, "val": 0.1, "test": 0.1}, 0)
    assert sorted(splits["split"]) == ["test", "train", "val"]


def test_limit_test_views_keeps_an_even_spread_and_touches_nothing_else() -> None:
    import pandas as pd

    from rocksr.data.splits import limit_test_views, split_tile_ids

    labels = ["train"] * 5 + ["test"] * 10 + ["val"] * 3 + ["excluded"] * 2 + ["test"] * 3
    splits = pd.DataFrame({"tile_id": np.arange(len(labels)), "split": labels})
    out = limit_test_views(splits, 4)
    test = split_tile_ids(splits, "test")
    assert list(split_tile_ids(out, "test")) == [test[0], test[4], test[8], test[12]]
    for name in ("train", "val"):
        assert list(split_tile_ids(out, name)) == list(split_tile_ids(splits, name))
    assert (out["split"] == "excluded").sum() == 2 + 9
    assert list(out["tile_id"]) == list(splits["tile_id"])
    for limit in (None, 13, 50):
        pd.testing.assert_frame_equal(limit_test_views(splits, limit), splits)
    assert list(splits["split"]) == labels  # the input is not changed
    with pytest.raises(ValueError, match="test_views"):
        limit_test_views(splits, 0)
