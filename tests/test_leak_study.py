"""The leak study's arithmetic (rocksr.evaluation.leak_study): scores, the table, its prose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rocksr.evaluation.leak_study import leak_markdown, leak_table, scores, shared_pixels


def _per_tile(model: str, psnr: list[float], ssim: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "psnr": psnr, "ssim": ssim})


def test_scores_skip_infinite_psnr_and_keep_every_tile_count() -> None:
    rows = pd.concat(
        [
            _per_tile("cgan", [20.0, 22.0, np.inf], [0.5, 0.7, 0.9]),
            _per_tile("ddpm", [30.0], [0.1]),
        ]
    )
    s = scores(rows, "cgan")
    assert s["n_test"] == 3
    assert s["psnr_mean"] == pytest.approx(21.0)
    assert s["psnr_std"] == pytest.approx(np.std([20.0, 22.0], ddof=1))
    assert s["ssim_mean"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="regress"):
        scores(rows, "regress")


def test_the_table_gives_the_inflation_of_the_leaky_split() -> None:
    free = scores(_per_tile("cgan", [20.0, 21.0], [0.60, 0.62]), "cgan")
    leaky = scores(_per_tile("cgan", [23.0, 24.0], [0.70, 0.74]), "cgan")
    table = leak_table("cgan", free, leaky, "regions", 1234)
    assert table["split"].tolist() == ["regions", "random", "inflation (random - regions)"]
    assert table["shared_pixels"].tolist() == [0, 1234, 1234]
    assert table["psnr_mean"].iloc[2] == pytest.approx(3.0)
    assert table["ssim_mean"].iloc[2] == pytest.approx(0.11)
    md = leak_markdown(table)
    assert "**+3.00 dB**" in md and "**+0.110**" in md and "| cgan | random | 2 |" in md
    assert "`random` split of the same views (1234 footprint pixels" in md
    assert "not leak-free" not in md
    other = leak_table("cgan", free, leaky, "regions", 0, leaky_strategy="blocks")
    assert other["split"].iloc[2] == "inflation (blocks - regions)"
    # a run whose own split leaks too is told so
    both = leak_table("cgan", free, leaky, "random", 99, leak_free_shared_pixels=99)
    assert both["shared_pixels"].tolist() == [99, 99, 99]
    assert "shares 99 footprint pixels between its splits too: it is not leak-free" in (
        leak_markdown(both)
    )


def test_shared_pixels_read_from_split_counts_or_a_clear_error(tmp_path) -> None:
    good = tmp_path / "split_counts.csv"
    pd.DataFrame({"split": ["train", "test"], "shared_footprint_pixels": [77, 77]}).to_csv(
        good, index=False
    )
    assert shared_pixels(good) == 77
    bad = tmp_path / "splits.csv"
    pd.DataFrame({"tile_id": [1], "split": ["train"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="splits.csv: no shared_footprint_pixels"):
        shared_pixels(bad)


def test_leak_rules_take_their_base_rules_resources_unless_named() -> None:
    from rocksr.config.resources import RESOURCE_DEFAULTS, rule_resource

    user = {"predict": {"gpu": 2, "mem_mb": 9000}, "leak_train_cgan": {"threads": 7}}
    assert rule_resource(user, "leak_predict", "gpu") == 2
    assert rule_resource(user, "leak_predict", "mem_mb") == 9000
    assert rule_resource({**user, "leak_predict": {"gpu": 0}}, "leak_predict", "gpu") == 0
    assert rule_resource(user, "leak_train_cgan", "threads") == 7
    # no entry of its own or its base's: the base rule's built-in values
    builtin = RESOURCE_DEFAULTS["train_ddpm"]["runtime"]
    assert rule_resource(user, "leak_train_ddpm", "runtime") == builtin
    # `leak_study` is a rule of its own, not a leak copy of a rule `study`
    assert rule_resource({}, "leak_study", "mem_mb") == RESOURCE_DEFAULTS["leak_study"]["mem_mb"]
