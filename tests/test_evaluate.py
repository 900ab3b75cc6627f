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

import rocksr.data.predstore as predstore_mod
import rocksr.data.splits as splits_mod
import rocksr.figures.figures as figures_mod
import rocksr.figures.loss_curve as curves_mod
import rocksr.figures.uncertainty_figure as uncertainty_mod
import rocksr.stages.baseline as stage_baseline
import rocksr.stages.evaluate as stage_evaluate
import rocksr.stages.predict as stage_predict
from rocksr.evaluation import metrics as M
from rocksr.evaluation.per_tile import otsu_sem_threshold
from rocksr.evaluation.table1_markdown import table1_markdown
from rocksr.evaluation.verdicts import table1_findings

TEST_IDS = np.array([i for i, s in enumerate(SPLIT) if s == "test"])


def _stores(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, Path]]:
    store, manifest, splits = make_dataset(tmp_path)
    preds = {}
    for name in ("identity", "histmatch"):
        preds[name] = tmp_path / f"{name}.zarr"
        stage_baseline.predict_baseline(name, store, splits, preds[name])
    # an "oracle" store: the ground truth itself -> PSNR inf, SSIM 1
    g = zarr.open_group(str(store), mode="r")
    truth = np.asarray(g["sem"][:])[TEST_IDS]
    preds["oracle"] = tmp_path / "oracle.zarr"
    predstore_mod.write_prediction_store(
        preds["oracle"],
        TEST_IDS,
        SIZE,
        iter([(TEST_IDS, truth)]),
        {"model": "oracle", "kind": "test"},
    )
    return store, manifest, splits, preds


def test_evaluate_tables(tmp_path: Path) -> None:
    store, manifest, splits, preds = _stores(tmp_path)
    out = tmp_path / "eval"
    table = stage_evaluate.evaluate(
        preds,
        store,
        splits,
        manifest,
        out / "per_tile.csv",
        out / "table1.csv",
        out / "table1.md",
        porosity_threshold=0.3,
    )
    per = pd.read_csv(out / "per_tile.csv")
    n_test = len(TEST_IDS)
    assert len(per) == len(preds) * n_test
    for name in preds:
        d = per[per["model"] == name]
        assert d["tile_id"].tolist() == TEST_IDS.tolist()
        assert d["index"].tolist() == list(range(n_test))
    assert {
        "psnr",
        "ssim",
        "porosity_pred",
        "porosity_true",
        "porosity_abs_err",
        "sample",
        "grid_row",
        "angle",
    } <= set(per.columns)
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
    thr = otsu_sem_threshold(store, splits)
    assert 0.0 < thr < 1.0
    g = zarr.open_group(str(store), mode="r")
    mct, sem = np.asarray(g["mct"][:]), np.asarray(g["sem"][:])
    sem2 = sem.copy()
    not_train = np.array([s != "train" for s in SPLIT])
    sem2[not_train] = 255 - sem2[not_train]
    write_store(tmp_path / "t2.zarr", mct, sem2)
    assert otsu_sem_threshold(tmp_path / "t2.zarr", splits) == thr
    # default evaluate() takes that threshold
    preds = {"identity": tmp_path / "id.zarr"}
    stage_baseline.predict_baseline("identity", store, splits, preds["identity"])
    t = stage_evaluate.evaluate(
        preds, store, splits, manifest, tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.md"
    )
    assert t["porosity_threshold"].iloc[0] == pytest.approx(thr)
    assert "Otsu" in (tmp_path / "c.md").read_text()


def test_evaluate_refuses_mismatched_store(tmp_path: Path) -> None:
    store, manifest, splits = make_dataset(tmp_path)
    bad = tmp_path / "bad.zarr"
    ids = TEST_IDS[:-1]
    predstore_mod.write_prediction_store(
        bad, ids, SIZE, iter([(ids, np.zeros((len(ids), SIZE, SIZE), np.uint8))]), {}
    )
    with pytest.raises(predstore_mod.PredictionStoreError):
        stage_evaluate.evaluate(
            {"bad": bad},
            store,
            splits,
            manifest,
            tmp_path / "a.csv",
            tmp_path / "b.csv",
            tmp_path / "c.md",
            0.5,
        )


def test_figures(tmp_path: Path) -> None:
    store, manifest, splits, preds = _stores(tmp_path)
    stage_evaluate.evaluate(
        preds,
        store,
        splits,
        manifest,
        tmp_path / "per.csv",
        tmp_path / "t.csv",
        tmp_path / "t.md",
        0.3,
    )
    figures_mod.figure2(tmp_path / "per.csv", tmp_path / "fig2.png", n=60)
    pos = figures_mod.figure3(preds, store, splits, tmp_path / "fig3.png", n_tiles=3, seed=1)
    assert len(pos) == 3 and np.array_equal(
        pos, figures_mod.choose_figure3_tiles(len(TEST_IDS), 3, 1)
    )
    hist_c = pd.DataFrame(
        {
            "phase": ["train", "train", "val", "train", "val"],
            "step": [1, 2, 2, 3, 3],
            "epoch": 0,
            "g_l1": [0.5, 0.4, None, 0.3, None],
            "loss_d": [1.0, 0.9, None, 0.8, None],
            "val_l1": [None, None, 0.45, None, 0.35],
            "lr": 2e-4,
        }
    )
    hist_d = pd.DataFrame(
        {"step": [10, 20, 30], "loss": [1.0, 0.5, 0.25], "val_loss": [None, 0.6, 0.3]}
    )
    hist_c.to_csv(tmp_path / "hc.csv", index=False)
    hist_d.to_csv(tmp_path / "hd.csv", index=False)
    curves_mod.plot_training_curves(
        {"cgan": tmp_path / "hc.csv", "ddpm": tmp_path / "hd.csv"}, tmp_path / "curves.png"
    )
    for f in ("fig2.png", "fig3.png", "curves.png"):
        assert (tmp_path / f).stat().st_size > 5000
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sampler_study(tmp_path: Path) -> None:
    from rocksr.evaluation.sampler_study import expand_configs
    from rocksr.stages.sampler_study import sampler_study

    store, _, splits = make_dataset(tmp_path)
    ckpt = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    configs = [
        {"sampler": "ancestral", "steps": None},
        {"sampler": "ddim", "steps": [2, 4]},
        {"sampler": "dpmsolver", "steps": 3},
    ]
    assert expand_configs(configs, 20) == [
        ("ancestral", None),
        ("ddim", 2),
        ("ddim", 4),
        ("dpmsolver", 3),
    ]
    df = sampler_study(
        ckpt,
        store,
        splits,
        tmp_path / "s.csv",
        tmp_path / "s.png",
        configs=configs,
        n_tiles=2,
        seed=0,
        batch_size=2,
        device="cpu",
    )
    assert df[["sampler", "steps"]].values.tolist() == [
        ["ancestral", 20],
        ["ddim", 2],
        ["ddim", 4],
        ["dpmsolver", 3],
    ]
    assert (df["n_tiles"] == 2).all() and (df["sec_per_image"] > 0).all()
    assert df["ssim_mean"].between(-1, 1).all() and np.isfinite(df["psnr_mean"]).all()
    assert (tmp_path / "s.png").exists() and len(pd.read_csv(tmp_path / "s.csv")) == 4
    anc = df.iloc[0]
    assert anc["psnr_gap_to_ancestral"] == 0 and anc["ssim_gap_to_ancestral"] == 0
    assert anc["speedup_vs_ancestral"] == pytest.approx(1.0)
    np.testing.assert_allclose(df["psnr_gap_to_ancestral"], df["psnr_mean"] - anc["psnr_mean"])
    np.testing.assert_allclose(
        df["speedup_vs_ancestral"], anc["sec_per_image"] / df["sec_per_image"]
    )
    assert not (tmp_path / "s.md").exists()  # only written when asked for
    with pytest.raises(ValueError, match="ancestral"):
        expand_configs([{"sampler": "ancestral", "steps": 5}], 20)
    cgan = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    with pytest.raises(ValueError, match="DDPM"):
        sampler_study(cgan, store, splits, tmp_path / "x.csv", configs=configs, n_tiles=1)


# ------------------------------------------------------------------ Table 1 findings, K samples


def _row(model: str, kind: str, ssim: float, psnr: float, **kw) -> dict:
    r = {
        "model": model,
        "kind": kind,
        "count": 10,
        "psnr_mean": psnr,
        "psnr_std": 1.0,
        "psnr_n_inf": 0,
        "ssim_mean": ssim,
        "ssim_std": 0.01,
        "porosity_abs_err_mean": 0.1,
        "porosity_abs_err_std": 0.01,
        "sampler": None,
        "steps": None,
        "n_samples": 1,
        "array": "pred",
    }
    r.update(kw)
    return r


def test_table1_markdown_flags_models_below_the_mean_baseline() -> None:
    table = pd.DataFrame(
        [
            _row("cgan", "cgan", 0.705, 19.61),
            _row("ddpm", "ddpm", 0.007, 4.61, sampler="ddim", steps=10, n_samples=4),
            _row(
                "ddpm (mean of 4)",
                "ddpm",
                0.20,
                18.0,
                sampler="ddim",
                steps=10,
                n_samples=4,
                array="mean",
            ),
            _row("identity", "baseline", 0.576, 13.64),
            _row("histmatch", "baseline", 0.730, 20.63),
            _row("mean", "baseline", 0.10, 17.70),
        ]
    )
    md = table1_markdown(table, 0.44)
    lines = md.splitlines()
    ddpm = next(ln for ln in lines if ln.startswith("| ddpm |"))
    assert "⚠ 0.007" in ddpm and "⚠ 4.61" in ddpm
    assert "ddpm, ddim 10 steps, 1 sample (of 4)" in ddpm
    mean_row = next(ln for ln in lines if ln.startswith("| ddpm (mean of 4) |"))
    assert "⚠" not in mean_row and "mean of 4 samples" in mean_row
    assert "⚠" not in next(ln for ln in lines if ln.startswith("| cgan |"))
    assert (
        "⚠ ddpm: PSNR 4.61 dB is below the constant mean-grey image (17.70 dB) — no better "
        "than predicting a constant."
    ) in md
    assert "⚠ ddpm: SSIM 0.007 is below the constant mean-grey image (0.100)" in md
    assert md.count("is below the constant mean-grey image") == 2
    assert (
        "Distortion: best PSNR: histmatch (baseline) 20.63 dB; best SSIM: histmatch (baseline) 0.730."
        in md
    )
    assert "No model beats the baselines on PSNR: histmatch 20.63 dB ≥ the best model, cgan" in md
    assert "No model beats the baselines on SSIM" in md
    assert "ddpm (mean of 4): does not beat histmatch on PSNR (18.00 dB vs 20.63 dB)" in md
    # the header and columns (two pore-phase statistics added)
    assert lines[0] == (
        "| Model | Kind | n | SSIM | PSNR (dB) | abs. porosity error | S2 distance | chord W1 (px) "
        "| spectrum distance (dec.) |"
    )
    assert all(ln.count("|") == 10 for ln in lines if ln.startswith("| "))

    # a model that wins is named as the winner, and the flags follow the numbers
    win = table.copy()
    win.loc[win["model"] == "ddpm (mean of 4)", ["psnr_mean", "ssim_mean"]] = [22.1, 0.80]
    md2 = table1_markdown(win)
    assert (
        "Distortion: best PSNR: ddpm (mean of 4) 22.10 dB; best SSIM: ddpm (mean of 4) 0.800."
        in md2
    )
    assert "On PSNR, ddpm (mean of 4) beats every baseline (best baseline: histmatch" in md2
    assert "ddpm (mean of 4): beats histmatch on PSNR (22.10 dB vs 20.63 dB)" in md2
    # without the mean baseline nothing is flagged, and the text says so
    md3 = table1_markdown(table[table["model"] != "mean"])
    assert "⚠" not in md3.split("\n\n")[0] and "No `mean` baseline in this table" in md3


def test_table1_findings_inf_psnr_and_ties() -> None:
    table = pd.DataFrame(
        [
            _row("oracle", "test", 1.0, float("nan"), psnr_n_inf=10),
            _row("mean", "baseline", 0.1, 15.0),
            _row("twin", "cgan", 0.1, 15.0),
        ]
    )
    flags, lines = table1_findings(table)
    assert flags == set()  # equal is not below
    assert "Distortion: best PSNR: oracle ∞ dB; best SSIM: oracle 1.000." in lines
    assert (
        "twin: ties with mean on PSNR (15.00 dB vs 15.00 dB); ties with mean on SSIM "
        "(0.100 vs 0.100)." in lines
    )


def _ddpm_store(tmp_path: Path, store: Path, splits: Path, k: int, noise: float) -> Path:
    """A fake DDPM store: truth-like predictions (the micro-CT) plus seeded noise, K samples."""
    import torch

    from rocksr.data.tilestore import open_tiles

    def run(mct: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return (mct + noise * torch.randn(mct.shape, generator=generator)).clamp(-1, 1)

    out = tmp_path / "ddpm.zarr"
    stage_predict.write_predictions(
        run,
        open_tiles(store),
        splits_mod.split_tile_ids(splits),
        out,
        {"model": "ddpm", "kind": "ddpm", "sampler": "ddim", "steps": 5},
        n_samples=k,
        seed=0,
        batch_size=2,
    )
    return out


def test_evaluate_adds_the_mean_of_k_row(tmp_path: Path) -> None:
    store, manifest, splits = make_dataset(tmp_path)
    preds = {"ddpm": _ddpm_store(tmp_path, store, splits, 3, 0.8)}
    for name in ("identity", "histmatch", "mean"):
        preds[name] = tmp_path / f"{name}.zarr"
        stage_baseline.predict_baseline(name, store, splits, preds[name])
    out = tmp_path / "eval"
    table = stage_evaluate.evaluate(
        preds,
        store,
        splits,
        manifest,
        out / "per.csv",
        out / "t.csv",
        out / "t.md",
        porosity_threshold=0.3,
    )
    names = ["ddpm", "ddpm (mean of 3)", "identity", "histmatch", "mean"]
    assert table["model"].tolist() == names
    t = pd.read_csv(out / "t.csv").set_index("model")
    assert t.loc["ddpm (mean of 3)", "kind"] == "ddpm" and t.loc["ddpm", "kind"] == "ddpm"
    assert t.loc["ddpm (mean of 3)", "array"] == "mean" and t.loc["ddpm", "array"] == "pred"
    assert (t.loc[["ddpm", "ddpm (mean of 3)"], "n_samples"] == 3).all()
    per = pd.read_csv(out / "per.csv")
    assert per["model"].drop_duplicates().tolist() == names
    g = zarr.open_group(str(store), mode="r")
    truth = M.to_unit(np.asarray(g["sem"][:])[TEST_IDS])
    mean = M.to_unit(np.asarray(predstore_mod.open_predictions(preds["ddpm"], array="mean")[0][:]))
    d = per[per["model"] == "ddpm (mean of 3)"]
    assert d["tile_id"].tolist() == TEST_IDS.tolist()
    np.testing.assert_allclose(d["psnr"], M.psnr(mean, truth), rtol=1e-12)
    np.testing.assert_allclose(d["ssim"], M.ssim(mean, truth), rtol=1e-12)
    pred = M.to_unit(np.asarray(predstore_mod.open_predictions(preds["ddpm"])[0][:]))
    np.testing.assert_allclose(per[per["model"] == "ddpm"]["psnr"], M.psnr(pred, truth))
    # averaging noisy samples helps: the mean row has a higher PSNR than one sample
    assert t.loc["ddpm (mean of 3)", "psnr_mean"] > t.loc["ddpm", "psnr_mean"]
    md = (out / "t.md").read_text()
    # this noisy fake is below the constant image on PSNR, and the table says so
    assert t.loc["ddpm", "psnr_mean"] < t.loc["mean", "psnr_mean"]
    assert f"⚠ ddpm: PSNR {t.loc['ddpm', 'psnr_mean']:.2f} dB is below the constant" in md
    # switched off, only the store's own row remains
    t2 = stage_evaluate.evaluate(
        preds,
        store,
        splits,
        manifest,
        out / "a.csv",
        out / "b.csv",
        out / "c.md",
        porosity_threshold=0.3,
        sample_means=False,
    )
    assert t2["model"].tolist() == ["ddpm", "identity", "histmatch", "mean"]


def test_uncertainty_figure_and_correlation(tmp_path: Path) -> None:
    store, _, splits = make_dataset(tmp_path)
    ddpm = _ddpm_store(tmp_path, store, splits, 3, 0.3)
    out = tmp_path / "u.png"
    res = uncertainty_mod.uncertainty_figure(ddpm, store, splits, out, n_tiles=3, seed=1)
    assert np.array_equal(res["positions"], figures_mod.choose_figure3_tiles(len(TEST_IDS), 3, 1))
    assert res["n_samples"] == 3 and res["n_pixels"] == len(TEST_IDS) * SIZE * SIZE
    assert out.stat().st_size > 5000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # r equals a direct computation over every test pixel
    g = zarr.open_group(str(store), mode="r")
    truth = np.asarray(g["sem"][:])[TEST_IDS].astype(np.float64)
    mean = np.asarray(predstore_mod.open_predictions(ddpm, array="mean")[0][:]).astype(np.float64)
    std = np.asarray(predstore_mod.open_predictions(ddpm, array="std")[0][:]).astype(np.float64)
    r = np.corrcoef(std.ravel(), np.abs(mean - truth).ravel())[0, 1]
    assert res["r"] == pytest.approx(r, abs=1e-9)
    r2, n2 = uncertainty_mod.std_error_correlation(ddpm, store, splits, batch_size=2)
    assert r2 == pytest.approx(r, abs=1e-9) and n2 == res["n_pixels"]
    # a K = 1 store has no spread to show
    one = tmp_path / "one.zarr"
    stage_baseline.predict_baseline("identity", store, splits, one)
    with pytest.raises(ValueError, match=r"one\.zarr: n_samples = 1"):
        uncertainty_mod.uncertainty_figure(one, store, splits, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def _study(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "sampler": s,
                "steps": n,
                "n_tiles": 4,
                "psnr_mean": p,
                "psnr_std": 0.5,
                "psnr_n_inf": 0,
                "ssim_mean": 0.5 + p / 100,
                "ssim_std": 0.01,
                "sec_per_image": sec,
                "device": "cpu",
                "batch_size": 4,
            }
            for s, n, p, sec in rows
        ]
    )


def test_sampler_study_gaps_and_cheapest_within_tolerance(tmp_path: Path) -> None:
    from rocksr.evaluation.sampler_study import (
        add_ancestral_gaps,
        cheapest_within,
        sampler_study_markdown,
    )

    df = add_ancestral_gaps(
        _study(
            [
                ("ancestral", 1000, 20.0, 10.0),
                ("ddim", 10, 19.5, 0.1),
                ("ddim", 20, 19.8, 0.2),
                ("ddim", 50, 20.1, 0.5),
                ("dpmsolver", 10, 19.75, 0.12),
                ("dpmsolver", 20, 19.95, 0.2),
            ]
        )
    )
    np.testing.assert_allclose(df["psnr_gap_to_ancestral"], [0, -0.5, -0.2, 0.1, -0.25, -0.05])
    np.testing.assert_allclose(df["speedup_vs_ancestral"], [1, 100, 50, 20, 10 / 0.12, 50])
    np.testing.assert_allclose(df["ssim_gap_to_ancestral"], df["psnr_gap_to_ancestral"] / 100)
    best = cheapest_within(df, 0.3)
    assert (best["sampler"], best["steps"]) == ("dpmsolver", 10)
    best = cheapest_within(df, 0.1)
    assert (best["sampler"], best["steps"]) == ("dpmsolver", 20)  # ties: higher PSNR wins
    md = sampler_study_markdown(df, 0.3)
    assert (
        "Cheapest within 0.3 dB of ancestral (mean PSNR): **dpmsolver, 10 steps**: "
        "19.75 dB (-0.25 dB vs ancestral 20.00 dB, 1000 steps; SSIM gap -0.002), 83.3× "
        "faster." in md
    )
    assert "| ddim | 10 | 19.50 ± 0.50 |" in md and "| -0.50 |" in md
    # nothing fast is close enough: ancestral itself
    slow = add_ancestral_gaps(_study([("ancestral", 100, 20.0, 1.0), ("ddim", 10, 15.0, 0.1)]))
    assert cheapest_within(slow)["sampler"] == "ancestral"
    assert "ancestral itself (100 steps)" in sampler_study_markdown(slow)
    # no ancestral row: NaN gaps, and the text says so
    none = add_ancestral_gaps(_study([("ddim", 10, 19.5, 0.1)]))
    assert (
        none[["psnr_gap_to_ancestral", "ssim_gap_to_ancestral", "speedup_vs_ancestral"]]
        .isna()
        .all()
        .all()
    )
    assert cheapest_within(none) is None
    assert "No ancestral row" in sampler_study_markdown(none)
    assert "| n/a | n/a | n/a |" in sampler_study_markdown(none)


def test_table1_without_a_pore_mode_prints_no_porosity_numbers() -> None:
    table = pd.DataFrame([_row("cgan", "cgan", 0.7, 20.0), _row("mean", "baseline", 0.5, 11.0)])
    verdict = {"bimodal": False, "reason": "no pore mode: valley ratio 0.98 > 0.5"}
    md = table1_markdown(table, 0.3, pore_mode=verdict)
    rows = [ln for ln in md.splitlines() if ln.startswith("| cgan")]
    assert rows and rows[0].count("n/a (no pore mode)") == 3
    assert "has no clear pore mode (no pore mode: valley ratio 0.98 > 0.5)" in md
    ok = table1_markdown(table, 0.3, pore_mode={"bimodal": True, "reason": "ok"})
    assert "n/a (no pore mode)" not in ok and "has a clear pore mode" in ok


def test_infinite_pore_distances_are_counted_not_hidden() -> None:
    row = _row("cgan", "cgan", 0.7, 20.0)
    row.update(s2_distance_mean=0.15, s2_distance_std=0.07, s2_distance_n_inf=1)
    row.update(chord_distance_mean=3.0, chord_distance_std=1.0, chord_distance_n_inf=0)
    md = table1_markdown(pd.DataFrame([row]), 0.3)
    line = next(ln for ln in md.splitlines() if ln.startswith("| cgan"))
    assert "0.150 ± 0.070 (1 × inf excluded)" in line and "3.00 ± 1.00 |" in line
    configured = {"bimodal": False, "reason": "no pore mode", "configured": True}
    md2 = table1_markdown(pd.DataFrame([row]), 0.3, pore_mode=configured)
    assert "n/a (no pore mode)" not in md2
    assert "use the porosity threshold set in the config" in md2
    assert "it has no clear pore mode" in md2


def test_pore_columns_worse_than_the_constant_image_are_flagged() -> None:
    cgan = _row("cgan", "cgan", 0.7, 20.0)
    mean = _row("mean", "baseline", 0.5, 11.0)
    for r, s2 in ((cgan, 0.349), (mean, 0.337)):
        r.update(s2_distance_mean=s2, s2_distance_std=0.1, s2_distance_n_inf=0)
    table = pd.DataFrame([cgan, mean])
    md = table1_markdown(table, 0.3)
    line = next(ln for ln in md.splitlines() if ln.startswith("| cgan"))
    assert "⚠ 0.349 ± 0.100" in line
    assert "⚠ cgan: S2 distance 0.349 is worse than the constant mean-grey image's (0.337)." in md
    no_pores = {"bimodal": False, "reason": "no pore mode"}
    md2 = table1_markdown(table, 0.3, pore_mode=no_pores)
    assert "S2 distance 0.349 is worse" not in md2


def test_a_distance_finite_on_few_tiles_is_neither_best_nor_a_flag() -> None:
    """The semi-real run's constant image: no pores, so its chord W1 is 0 on the 4 pore-free
    tiles of 1127 and inf on the rest; a mean over 4 tiles ranked first and flagged every model."""
    rows = []
    for model, kind, chord, n_inf in (
        ("regress", "regress", 12.23, 22),
        ("ddpm", "ddpm", 11.20, 5),  # 5 of 10: half, still ranked
        ("mean", "baseline", 0.0, 9),  # 9 of 10 tiles inf
    ):
        r = _row(model, kind, 0.7, 22.0)
        r.update(chord_distance_mean=chord, chord_distance_std=0.5, chord_distance_n_inf=n_inf)
        r.update(s2_distance_mean=0.1, s2_distance_std=0.01, s2_distance_n_inf=0)
        rows.append(r)
    rows[0]["count"] = 1127
    md = table1_markdown(pd.DataFrame(rows), 0.3)
    assert "best chord W1: ddpm 11.20" in md
    assert "chord W1 11.20 is worse than the constant" not in md
    assert "⚠ 12.23" not in md and "⚠ 11.20" not in md
    mean_line = next(ln for ln in md.splitlines() if ln.startswith("| mean"))
    assert "0.00 ± 0.50 (9 × inf excluded; not ranked)" in mean_line
    ddpm_line = next(ln for ln in md.splitlines() if ln.startswith("| ddpm"))
    assert "(5 × inf excluded)" in ddpm_line


def test_perception_figure_labels_close_rows_apart(tmp_path: Path) -> None:
    """Rows that sit close in the plane (one sample beside histmatch, as on the semi-real pair)
    get labels that overlap neither each other nor another row's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rocksr.figures import perception_figure as pf

    rows = [
        _row("regress", "regress", 0.700, 22.89, spectrum_distance_mean=2.27),
        _row("ddpm", "ddpm", 0.659, 22.51, spectrum_distance_mean=1.58, sampler="ddim"),
        _row("histmatch", "baseline", 0.633, 22.45, spectrum_distance_mean=1.54),
        _row("ddpm (mean of 2)", "ddpm", 0.675, 22.68, spectrum_distance_mean=1.75, array="mean"),
        _row("cgan", "cgan", 0.600, 20.50, spectrum_distance_mean=1.21),
    ]
    labels: dict = {}
    real_place = pf._place_labels

    def spy(fig, ax, points):
        real_place(fig, ax, points)
        r = fig.canvas.get_renderer()
        labels[ax] = [t.get_window_extent(r) for t in ax.texts]
        marks = [ax.transData.transform((x, y)) for x, y, _ in points]
        for i, box in enumerate(labels[ax]):
            assert not any(box.overlaps(o) for o in labels[ax][:i]), points[i][2]
            assert not any(box.contains(*m) for j, m in enumerate(marks) if j != i), points[i][2]

    pf._place_labels = spy
    try:
        pf.plot_perception_distortion(pd.DataFrame(rows), tmp_path / "pd.png")
    finally:
        pf._place_labels = real_place
        plt.close("all")
    assert (tmp_path / "pd.png").is_file() and len(labels) == 2
    assert all(len(boxes) == 5 for boxes in labels.values())
