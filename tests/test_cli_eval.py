"""The predict / baseline / evaluate / figures / uncertainty-figure / sampler-study commands:
new flags, backwards-compatible calls and one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_predict import (  # noqa: F401 (one_torch_thread: autouse fixture)
    make_checkpoint,
    make_dataset,
    one_torch_thread,
    test_ids,
)

import rocksr.data.predstore as predstore_mod
from rocksr.cli import main


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    store, manifest, splits = make_dataset(tmp_path)
    return {"root": tmp_path, "store": store, "manifest": manifest, "splits": splits}


def test_predict_n_samples_and_old_call(data: dict, capsys: pytest.CaptureFixture) -> None:
    ckpt = make_checkpoint(data["root"] / "ddpm.pt", "ddpm")
    base = [
        "predict",
        "--checkpoint",
        ckpt,
        "--store",
        data["store"],
        "--splits",
        data["splits"],
        "--steps",
        "2",
        "--batch-size",
        "3",
        "--device",
        "cpu",
    ]
    old, new = data["root"] / "old.zarr", data["root"] / "new.zarr"
    assert run_cli(capsys, *base, "--out", old)[0] == 0  # the call the old rule made
    assert run_cli(capsys, *base, "--out", new, "--n-samples", "2")[0] == 0
    a, attrs_a = predstore_mod.open_predictions(old)
    b, attrs_b = predstore_mod.open_predictions(new)
    assert attrs_a["n_samples"] == 1 and attrs_b["n_samples"] == 2
    np.testing.assert_array_equal(np.asarray(a[:]), np.asarray(b[:]))
    assert predstore_mod.open_predictions(new, array="samples")[0].shape[1] == 2
    with pytest.raises(SystemExit):
        main([str(x) for x in base] + ["--out", str(data["root"] / "x.zarr"), "--n-samples", "0"])
    assert "must be >= 1" in capsys.readouterr().err


def test_mean_baseline_evaluate_and_figures(data: dict, capsys: pytest.CaptureFixture) -> None:
    root = data["root"]
    common = ["--store", data["store"], "--splits", data["splits"]]
    stores = {}
    for name in ("identity", "histmatch", "mean"):
        stores[name] = root / f"{name}.zarr"
        assert run_cli(capsys, "baseline", "--name", name, *common, "--out", stores[name])[0] == 0
    assert (
        np.asarray(predstore_mod.open_predictions(stores["mean"])[0][:])
        == predstore_mod.open_predictions(stores["mean"])[1]["mean_grey"]
    ).all()
    preds = [f"{n}={p}" for n, p in stores.items()]
    rc, err = run_cli(
        capsys,
        "evaluate",
        "--predictions",
        *preds,
        *common,
        "--manifest",
        data["manifest"],
        "--out-per-tile",
        root / "per.csv",
        "--out-table",
        root / "t.csv",
        "--out-markdown",
        root / "t.md",
    )
    assert rc == 0, err
    assert pd.read_csv(root / "t.csv")["model"].tolist() == ["identity", "histmatch", "mean"]
    md = (root / "t.md").read_text()
    assert "| mean | baseline |" in md and "Distortion: best PSNR:" in md
    hist = root / "h.csv"
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5]}).to_csv(hist, index=False)
    args = [
        "figures",
        "--predictions",
        *preds,
        "--histories",
        f"a={hist}",
        "--per-tile",
        root / "per.csv",
        *common,
        "--out-figure2",
        root / "f2.png",
        "--out-figure3",
        root / "f3.png",
        "--out-curves",
        root / "c.png",
    ]
    assert run_cli(capsys, *args)[0] == 0
    assert (root / "f3.png").exists()
    rc, err = run_cli(
        capsys,
        *args[:-6],
        "--out-figure2",
        root / "f2.png",
        "--out-figure3",
        root / "f3.png",
        "--out-curves",
        root / "c.png",
        "--per-tile",
        root / "nope.csv",
    )
    assert rc == 2 and err.strip().count("\n") == 0
    assert f"{root / 'nope.csv'}: per-tile metrics table does not exist" in err


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing_store", "missing.zarr: prediction store does not exist"),
        ("missing_manifest", "nope.csv: manifest does not exist"),
        ("foreign_manifest", "manifest lacks"),
        ("no_name", "expected NAME=PATH"),
    ],
)
def test_evaluate_errors_are_one_line(
    data: dict, capsys: pytest.CaptureFixture, case: str, expect: str
) -> None:
    root = data["root"]
    ident = root / "identity.zarr"
    assert (
        run_cli(
            capsys,
            "baseline",
            "--name",
            "identity",
            "--store",
            data["store"],
            "--splits",
            data["splits"],
            "--out",
            ident,
        )[0]
        == 0
    )
    manifest = data["manifest"]
    preds = [f"identity={ident}"]
    if case == "missing_store":
        preds = [f"x={root / 'missing.zarr'}"]
    elif case == "missing_manifest":
        manifest = root / "nope.csv"
    elif case == "foreign_manifest":
        manifest = root / "other.csv"
        pd.read_csv(data["manifest"]).head(3).to_csv(manifest, index=False)
    elif case == "no_name":
        preds = [str(ident)]
    rc, err = run_cli(
        capsys,
        "evaluate",
        "--predictions",
        *preds,
        "--store",
        data["store"],
        "--splits",
        data["splits"],
        "--manifest",
        manifest,
        "--out-per-tile",
        root / "p.csv",
        "--out-table",
        root / "t.csv",
        "--out-markdown",
        root / "t.md",
    )
    assert rc == 2 and expect in err and err.strip().count("\n") == 0, err
    assert not (root / "t.csv").exists()


def test_uncertainty_and_sampler_study_commands(data: dict, capsys: pytest.CaptureFixture) -> None:
    root = data["root"]
    ckpt = make_checkpoint(root / "ddpm.pt", "ddpm")
    common = ["--store", data["store"], "--splits", data["splits"]]
    store = root / "ddpm.zarr"
    assert (
        run_cli(
            capsys,
            "predict",
            "--checkpoint",
            ckpt,
            *common,
            "--out",
            store,
            "--steps",
            "2",
            "--n-samples",
            "2",
            "--device",
            "cpu",
        )[0]
        == 0
    )
    rc, err = run_cli(
        capsys,
        "uncertainty-figure",
        "--predictions",
        f"ddpm={store}",
        *common,
        "--out",
        root / "u.png",
    )
    assert rc == 0, err
    assert (root / "u.png").read_bytes()[:4] == b"\x89PNG"
    ident = root / "identity.zarr"
    run_cli(capsys, "baseline", "--name", "identity", *common, "--out", ident)
    rc, err = run_cli(
        capsys, "uncertainty-figure", "--predictions", str(ident), *common, "--out", root / "v.png"
    )
    assert rc == 2 and f"{ident}: n_samples = 1" in err and err.strip().count("\n") == 0
    rc, err = run_cli(
        capsys,
        "sampler-study",
        "--checkpoint",
        ckpt,
        *common,
        "--configs",
        '[{"sampler": "ancestral", "steps": null}, {"sampler": "ddim", "steps": 2}]',
        "--n-tiles",
        "2",
        "--device",
        "cpu",
        "--out-csv",
        root / "s.csv",
        "--out-png",
        root / "s.png",
        "--out-md",
        root / "s.md",
    )
    assert rc == 0, err
    df = pd.read_csv(root / "s.csv")
    assert {"psnr_gap_to_ancestral", "ssim_gap_to_ancestral"} <= set(df.columns)
    # the timings are apart, beside the CSV, by (sampler, steps)
    assert not {"sec_per_image", "speedup_vs_ancestral"} & set(df.columns)
    timing = pd.read_csv(root / "s_timing.csv")
    assert list(timing.columns) == ["sampler", "steps", "sec_per_image", "speedup_vs_ancestral"]
    assert timing[["sampler", "steps"]].equals(df[["sampler", "steps"]])
    assert (timing["sec_per_image"] > 0).all()
    assert "Cheapest within 0.3 dB of ancestral" in (root / "s.md").read_text()
    assert len(test_ids()) >= 2
