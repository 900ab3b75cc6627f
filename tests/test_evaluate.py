"""Evaluation tables (per tile, Table 1), porosity threshold, figures and the sampler study."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from test_predict import (  # noqa: F401 (one_torch_thread: autouse fixture)
    SIZE,
    SPLIT,
    make_checkpoint,
    make_dataset,
    one_torch_thread,
    write_store,
)

from rocksr import baselines as B
from rocksr import evaluate as E
from rocksr import figures_eval as F
from rocksr import metrics as M
from rocksr import predict as P

TEST_IDS = np.array([i for i, s in enumerate(SPLIT) if s == "test"])


def _stores(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, Path]]:
    store, manifest, splits = make_dataset(tmp_path)
    preds = {}
    for name in ("identity", "histmatch"):
        preds[name] = tmp_path / f"{name}.zarr"
        B.predict_baseline(name, store, splits, preds[name])
    # an "oracle" store: the ground truth itself -> PSNR inf, SSIM 1
    g = zarr.open_group(str(store), mode="r")
    truth = np.asarray(g["sem"][:])[TEST_IDS]
    preds["oracle"] = tmp_path / "oracle.zarr"
    P.write_prediction_store(preds["oracle"], TEST_IDS, SIZE, iter([(TEST_IDS, truth)]),
                             {"model": "oracle", "kind": "test"})
    return store, manifest, splits, preds


def test_evaluate_tables(tmp_path: Path) -> None:
    store, manifest, splits, preds = _stores(tmp_path)
    out = tmp_path / "eval"
    table = E.evaluate(preds, store, splits, manifest, out / "per_tile.csv", out / "table1.csv",
                       out / "table1.md", porosity_threshold=0.3)
    per = pd.read_csv(out / "per_tile.csv")
    n_test = len(TEST_IDS)
    assert len(per) == len(preds) * n_test
    for name in preds:
        d = per[per["model"] == name]
        assert d["tile_id"].tolist() == TEST_IDS.tolist()
        assert d["index"].tolist() == list(range(n_test))
    assert {"psnr", "ssim", "porosity_pred", "porosity_true", "porosity_abs_err", "sample",
            "grid_row", "angle"} <= set(per.columns)
    # per-tile values equal direct metric calls
    g = zarr.open_group(str(store), mode="r")
    truth = M.to_unit(np.asarray(g["sem"][:])[TEST_IDS])
    ident = M.to_unit(np.asarray(g["mct"][:])[TEST_IDS])
    d = per[per["model"] == "identity"]
    np.testing.assert_allclose(d["psnr"], M.psnr(ident, truth), rtol=1e-12)
    np.testing.assert_allclose(d["ssim"], M.ssim(ident, truth), rtol=1e-12)
    np.testing.assert_allclose(d["porosity_true"], M.porosity(truth, 0.3))
    # the oracle: inf PSNR written as inf, counted, excluded from the mean
    o = per[per["model"] == "oracle"]
    assert np.isposinf(o["psnr"]).all() and np.allclose(o["ssim"], 1.0)
    t = pd.read_csv(out / "table1.csv")
    assert t["model"].tolist() == list(preds)  # every model/baseline, in the order given
    row = t.set_index("model").loc["oracle"]
    assert row["psnr_n_inf"] == n_test and math.isnan(row["psnr_mean"])
    assert row["porosity_abs_err_mean"] == 0.0
    ri = t.set_index("model").loc["identity"]
    assert ri["count"] == n_test
    assert ri["psnr_mean"] == pytest.approx(np.mean(M.psnr(ident, truth)))
    assert ri["ssim_std"] == pytest.approx(np.std(M.ssim(ident, truth), ddof=1))
    assert list(table["model"]) == list(preds)
    md = (out / "table1.md").read_text()
    for name in preds:
        assert f"| {name} |" in md
    assert "inf excluded" in md and "0.3000" in md


def test_otsu_threshold_uses_train_sem_only(tmp_path: Path) -> None:
    store, manifest, splits = make_dataset(tmp_path)
    thr = E.otsu_sem_threshold(store, splits)
    assert 0.0 < thr < 1.0
    g = zarr.open_group(str(store), mode="r")
    mct, sem = np.asarray(g["mct"][:]), np.asarray(g["sem"][:])
    sem2 = sem.copy()
    not_train = np.array([s != "train" for s in SPLIT])
    sem2[not_train] = 255 - sem2[not_train]
    write_store(tmp_path / "t2.zarr", mct, sem2)
    assert E.otsu_sem_threshold(tmp_path / "t2.zarr", splits) == thr
    # default evaluate() takes that threshold
    preds = {"identity": tmp_path / "id.zarr"}
    B.predict_baseline("identity", store, splits, preds["identity"])
    t = E.evaluate(preds, store, splits, manifest, tmp_path / "a.csv", tmp_path / "b.csv",
                   tmp_path / "c.md")
    assert t["porosity_threshold"].iloc[0] == pytest.approx(thr)
    assert "Otsu" in (tmp_path / "c.md").read_text()


def test_evaluate_refuses_mismatched_store(tmp_path: Path) -> None:
    store, manifest, splits = make_dataset(tmp_path)
    bad = tmp_path / "bad.zarr"
    ids = TEST_IDS[:-1]
    P.write_prediction_store(bad, ids, SIZE, iter([(ids, np.zeros((len(ids), SIZE, SIZE),
                                                                  np.uint8))]), {})
    with pytest.raises(P.PredictionStoreError):
        E.evaluate({"bad": bad}, store, splits, manifest, tmp_path / "a.csv",
                   tmp_path / "b.csv", tmp_path / "c.md", 0.5)


def test_figures(tmp_path: Path) -> None:
    store, manifest, splits, preds = _stores(tmp_path)
    E.evaluate(preds, store, splits, manifest, tmp_path / "per.csv", tmp_path / "t.csv",
               tmp_path / "t.md", 0.3)
    F.figure2(tmp_path / "per.csv", tmp_path / "fig2.png", n=60)
    pos = F.figure3(preds, store, splits, tmp_path / "fig3.png", n_tiles=3, seed=1)
    assert len(pos) == 3 and np.array_equal(pos, F.choose_figure3_tiles(len(TEST_IDS), 3, 1))
    hist_c = pd.DataFrame({"phase": ["train", "train", "val", "train", "val"],
                           "step": [1, 2, 2, 3, 3], "epoch": 0, "g_l1": [0.5, 0.4, None, 0.3, None],
                           "loss_d": [1.0, 0.9, None, 0.8, None],
                           "val_l1": [None, None, 0.45, None, 0.35], "lr": 2e-4})
    hist_d = pd.DataFrame({"step": [10, 20, 30], "loss": [1.0, 0.5, 0.25],
                           "val_loss": [None, 0.6, 0.3]})
    hist_c.to_csv(tmp_path / "hc.csv", index=False)
    hist_d.to_csv(tmp_path / "hd.csv", index=False)
    F.plot_training_curves({"cgan": tmp_path / "hc.csv", "ddpm": tmp_path / "hd.csv"},
                           tmp_path / "curves.png")
    for f in ("fig2.png", "fig3.png", "curves.png"):
        assert (tmp_path / f).stat().st_size > 5000
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sampler_study(tmp_path: Path) -> None:
    from rocksr.sampler_study import expand_configs, sampler_study

    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    configs = [{"sampler": "ancestral", "steps": None}, {"sampler": "ddim", "steps": [2, 4]},
               {"sampler": "dpmsolver", "steps": 3}]
    assert expand_configs(configs, 20) == [("ancestral", None), ("ddim", 2), ("ddim", 4),
                                           ("dpmsolver", 3)]
    df = sampler_study(ckpt, store, splits, tmp_path / "s.csv", tmp_path / "s.png",
                       configs=configs, n_tiles=2, seed=0, batch_size=2, device="cpu")
    assert df[["sampler", "steps"]].values.tolist() == [["ancestral", 20], ["ddim", 2],
                                                         ["ddim", 4], ["dpmsolver", 3]]
    assert (df["n_tiles"] == 2).all() and (df["sec_per_image"] > 0).all()
    assert df["ssim_mean"].between(-1, 1).all() and np.isfinite(df["psnr_mean"]).all()
    assert (tmp_path / "s.png").exists() and len(pd.read_csv(tmp_path / "s.csv")) == 4
    with pytest.raises(ValueError, match="ancestral"):
        expand_configs([{"sampler": "ancestral", "steps": 5}], 20)
    cgan = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    with pytest.raises(ValueError, match="DDPM"):
        sampler_study(cgan, store, splits, tmp_path / "x.csv", configs=configs, n_tiles=1)
