import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rocksr.data.splits import assign_holdout, leakage, make_splits, split_counts
from rocksr.data.tilestore import build_manifest

FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}


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
