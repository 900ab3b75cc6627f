"""``rocksr enhance`` library: seamless whole-slice / stack inference (rocksr.enhance).

Tiny models built here (random weights; what is tested is tiling, fusing, seeding, I/O and
errors, not image quality): a cGAN ``UNet1`` and a 2-level DDPM U-Net on 16 px tiles with a
20-step schedule and 3 sampler steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr

import rocksr.enhance.fused as fused_mod
import rocksr.enhance.inputs as inputs_mod
import rocksr.enhance.run as run_mod
from rocksr.errors import RocksrError

TILE = 16
TINY_UNET = {
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "attention_levels": [False, False],
    "norm_num_groups": 4,
    "attention_head_dim": 8,
}
SCHEDULE = {"timesteps": 20, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.2}
RECORD = {
    "method": "percentile",
    "mct": {"p_low": 0.5, "p_high": 99.5, "clahe": False, "clahe_clip": 0.01, "clahe_kernel": 64},
    "sem": {"p_low": 0.5, "p_high": 99.5, "clahe": False, "clahe_clip": 0.01, "clahe_kernel": 64},
}
STEPS = 3


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; many threads spin-wait on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_checkpoint(
    path: Path,
    kind: str,
    seed: int = 0,
    record: bool = True,
    payload: dict | None = None,
    **extra_cfg,
) -> Path:
    """A rocksr checkpoint (with digest) holding a tiny randomly initialized model; ``payload``:
    extra top-level checkpoint keys (e.g. a DDPM's ``prior`` record)."""
    from rocksr.checkpoints import FORMAT, save_atomic
    from rocksr.models.registry import arch_signature, build_models

    torch.manual_seed(seed)
    cfg: dict = {"unet": dict(TINY_UNET), "schedule": dict(SCHEDULE)} if kind == "ddpm" else {}
    cfg.update(extra_cfg)
    if record:
        cfg["tile_size"] = TILE
        cfg["normalization"] = json.loads(json.dumps(RECORD))
    models = build_models(kind, cfg)
    save_atomic(
        {
            "format": FORMAT,
            "kind": kind,
            "config": cfg,
            "arch": arch_signature(kind, cfg),
            "models": {k: m.state_dict() for k, m in models.items()},
            "ema": None,
            "step": 1,
            "epoch": 0,
            **(payload or {}),
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ckpt")
    return {
        "cgan": make_checkpoint(d / "cgan.pt", "cgan"),
        "ddpm": make_checkpoint(d / "ddpm.pt", "ddpm"),
        "ddpm_norecord": make_checkpoint(d / "ddpm_old.pt", "ddpm", record=False, tile_size=TILE),
    }


def smooth_image(h: int, w: int, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.sin(yy / 5.0 + seed) + np.cos(xx / 7.0) + 0.3 * rng.random((h, w))
    base = (base - base.min()) / (base.max() - base.min())
    if dtype == np.uint16:
        return (base * 50000 + 1000).astype(np.uint16)
    return (base * 200 + 20).astype(np.uint8)


def only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def description(path: Path) -> dict:
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.pages[0].description)["rocksr"]


def run(ckpt, inp, out, **kw) -> dict:
    kw.setdefault("progress", False)
    kw.setdefault("steps", STEPS)
    kw.setdefault("device", "cpu")
    return run_mod.enhance(ckpt, inp, out, **kw)


def identity_cgan(monkeypatch, cfg: dict) -> None:
    """Make every checkpoint load as an identity 'cGAN' (to test the data path bit for bit)."""
    import rocksr.inference

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x.clone()

    monkeypatch.setattr(
        rocksr.inference, "load_for_inference", lambda p, d="cpu": ("cgan", Identity(), cfg)
    )


# ------------------------------------------------------------------------------ cGAN, 2-D


def test_cgan_slice_from_16bit_tiff_with_recorded_normalization(tmp_path, ckpts) -> None:
    from rocksr.data.normalize import normalize_image
    from rocksr.enhance.blending import blend_deterministic
    from rocksr.files import sha256_file
    from rocksr.inference import load_for_inference

    raw = smooth_image(45, 61, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", raw)
    r = run(ckpts["cgan"], tmp_path / "in.tif", tmp_path / "out.tif")
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.shape == raw.shape and out.dtype == np.uint8
    # = the generator blended over the slice normalized with the checkpoint's record
    _, g, _ = load_for_inference(ckpts["cgan"])
    # the cGAN's own whole-slice defaults (registry): 3/4 overlap, cosine window (no banding)
    want = blend_deterministic(
        normalize_image(raw, **RECORD["mct"]),
        lambda b: g(b).clamp(-1, 1),
        TILE,
        3 * TILE // 4,
        window="cosine",
    )
    np.testing.assert_array_equal(out, want)
    meta = description(tmp_path / "out.tif")
    assert meta["checkpoint_sha256"] == sha256_file(ckpts["cgan"])
    assert meta["normalization"]["mode"] == "from-checkpoint"
    assert "recorded percentile stretch 0.5..99.5" in meta["normalization"]["description"]
    assert (meta["tile"], meta["overlap"], meta["window"]) == (TILE, 3 * TILE // 4, "cosine")
    assert meta["rocksr_version"] and r["outputs"] == {"pred": str(tmp_path / "out.tif")}
    assert only(tmp_path) == ["in.tif", "out.tif"]
    # deterministic; a second run replaces the output
    run(ckpts["cgan"], tmp_path / "in.tif", tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), out)


def test_identity_model_returns_the_input_exactly(tmp_path, monkeypatch) -> None:
    identity_cgan(monkeypatch, {"tile_size": TILE})
    (tmp_path / "c.pt").write_bytes(b"x")
    for h, w, ov in ((TILE, TILE, None), (37, 53, 5), (40, 33, 0), (50, 50, None)):
        img = smooth_image(h, w, seed=h)
        tifffile.imwrite(tmp_path / "in.tif", img)
        for window in ("gaussian", "cosine"):
            run(tmp_path / "c.pt", tmp_path / "in.tif", tmp_path / "o.png", normalize="none",
                overlap=ov, window=window)  # fmt: skip
            from PIL import Image

            with Image.open(tmp_path / "o.png") as im:
                np.testing.assert_array_equal(np.asarray(im), img)
                assert json.loads(im.text["rocksr"])["normalization"]["mode"] == "none"


def test_crop_enhances_the_central_square_of_the_slice(tmp_path, monkeypatch) -> None:
    """``crop``: the identity model's output is the input's central square, for an even and an
    odd margin, and the provenance records where the square lies."""
    identity_cgan(monkeypatch, {"tile_size": TILE})
    (tmp_path / "c.pt").write_bytes(b"x")
    for h, w, size in ((64, 64, 40), (50, 71, 33)):
        img = smooth_image(h, w, seed=h)
        tifffile.imwrite(tmp_path / "in.tif", img)
        report = run(tmp_path / "c.pt", tmp_path / "in.tif", tmp_path / "o.tif",
                     normalize="none", crop=size, overwrite=True)  # fmt: skip
        y0, x0 = (h - size) // 2, (w - size) // 2
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / "o.tif"), img[y0 : y0 + size, x0 : x0 + size]
        )
        assert description(tmp_path / "o.tif")["crop"] == {"size": size, "origin": [y0, x0]}
        assert report["crop"]["origin"] == [y0, x0] and report["shape"] == [size, size]


def normalize_raw(tmp_path: Path, params: dict | None = None, **settings) -> dict:
    """``normalize_pair`` of ``tmp_path/{mct,sem}_raw.tif`` into ``tmp_path/{mct,sem}.tif``."""
    from rocksr.config.pair_settings import PairSettings
    from rocksr.stages.normalize import normalize_pair

    return normalize_pair(
        tmp_path / "mct_raw.tif",
        tmp_path / "sem_raw.tif",
        tmp_path / "mct.tif",
        tmp_path / "sem.tif",
        tmp_path / "n.json",
        params or {},
        settings=PairSettings(**settings),
    )


def test_normalization_round_trip_reproduces_the_training_image(tmp_path, monkeypatch) -> None:
    """The checkpoint's record applied to the raw training micro-CT gives, bit for bit, the
    normalized image that training used (here with an identity model, so the output *is* the
    normalized input), for a 2-D input and for the same image as a one-page stack."""

    raw = smooth_image(48, 40, seed=5, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "mct_raw.tif", raw)
    tifffile.imwrite(tmp_path / "sem_raw.tif", smooth_image(48, 40, seed=6, dtype=np.uint16))
    params = {"mct": {"p_low": 2.0, "p_high": 97.0}, "sem": {}}
    report = normalize_raw(tmp_path, params)
    record = {"method": "percentile", "mct": report["mct"]["params"]}
    identity_cgan(monkeypatch, {"tile_size": TILE, "normalization": record})
    (tmp_path / "c.pt").write_bytes(b"x")
    trained = tifffile.imread(tmp_path / "mct.tif")
    r = run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "o.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), trained)
    assert r["normalization"]["params"]["p_low"] == 2.0
    assert r["normalization"]["black"] == report["mct"]["stretch_black"]
    # as a stack (one page): the stack path (streamed limits, fixed stretch) agrees
    run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "s.tif", pages="0")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), trained)


def test_a_field_of_view_record_finds_the_inputs_own_fov(tmp_path, monkeypatch) -> None:
    """Training with ``mask: auto_fov`` records ``within: auto_fov``; enhance then takes the
    percentiles inside the new input's field of view: on the training micro-CT it reproduces
    the normalized training image bit for bit (2-D and as a stack), and an input without a
    surround falls back to every pixel and says so."""
    from rocksr.data.masks import disc

    raw = smooth_image(64, 64, seed=5, dtype=np.uint16) // 2 + 1000
    raw[~disc(raw.shape, (31.5, 31.5), 30.0)] = 0
    tifffile.imwrite(tmp_path / "mct_raw.tif", raw)
    tifffile.imwrite(tmp_path / "sem_raw.tif", smooth_image(64, 64, seed=6, dtype=np.uint16))
    report = normalize_raw(tmp_path, mask="auto_fov")
    record = {"method": "percentile", "mct": report["mct"]["params"], "within": "auto_fov"}
    identity_cgan(monkeypatch, {"tile_size": TILE, "normalization": record})
    (tmp_path / "c.pt").write_bytes(b"x")
    trained = tifffile.imread(tmp_path / "mct.tif")
    r = run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "o.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), trained)
    assert r["normalization"]["black"] == report["mct"]["stretch_black"] > 0
    assert "percentiles within its field of view" in r["normalization"]["limits_over"]
    run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "s.tif", pages="0")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), trained)
    # no surround: every pixel, said
    tifffile.imwrite(tmp_path / "inner.tif", raw[16:48, 16:48])
    r = run(tmp_path / "c.pt", tmp_path / "inner.tif", tmp_path / "i.tif")
    assert "no circular field of view found" in r["normalization"]["limits_over"]


def test_a_coarse_raw_slice_is_up_sampled_as_in_training(tmp_path, monkeypatch) -> None:
    """Training pairs with mct_scale 4 record it; a raw slice at the micro-CT's pixel size is
    up-sampled by 4 before normalization, so the identity model returns the normalized
    training image (SEM grid) bit for bit; --mct-scale 1 keeps the input's grid."""
    from rocksr.stages.build_dataset import normalization_record

    coarse = smooth_image(20, 24, seed=7, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "mct_raw.tif", coarse)
    tifffile.imwrite(tmp_path / "sem_raw.tif", smooth_image(80, 96, seed=8))
    normalize_raw(tmp_path, mct_scale="auto")
    record = normalization_record({}, ["none"], [4])
    identity_cgan(monkeypatch, {"tile_size": TILE, "normalization": record})
    (tmp_path / "c.pt").write_bytes(b"x")
    r = run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "o.tif")
    assert r["mct_scale"] == 4 and r["shape"] == [80, 96]
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "o.tif"), tifffile.imread(tmp_path / "mct.tif")
    )
    r = run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "p.tif", mct_scale=1)
    assert r["shape"] == [20, 24]
    identity_cgan(
        monkeypatch, {"tile_size": TILE, "normalization": normalization_record({}, None, [2, 4])}
    )
    with pytest.raises(
        RocksrError, match="different micro-CT up-sampling factors .2, 4.; pass --mct-scale"
    ):
        run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "q.tif")
    with pytest.raises(RocksrError, match="--mct-scale must be a positive integer or auto"):
        run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "q.tif", mct_scale="x2")
    assert not (tmp_path / "q.tif").exists()


def test_a_coarse_slice_with_a_field_of_view_matches_training_bit_for_bit(
    tmp_path, monkeypatch
) -> None:
    """mct_scale 4 and mask auto_fov in training: the raw coarse slice goes through enhance
    (FOV found on its own grid, up-sampled, percentiles inside) to the normalized training
    image exactly."""
    from rocksr.data.masks import disc
    from rocksr.stages.build_dataset import normalization_record

    coarse = smooth_image(24, 24, seed=9, dtype=np.uint16) // 2 + 1000
    coarse[~disc(coarse.shape, (11.5, 11.5), 11.0)] = 0
    tifffile.imwrite(tmp_path / "mct_raw.tif", coarse)
    tifffile.imwrite(tmp_path / "sem_raw.tif", smooth_image(96, 96, seed=8))
    normalize_raw(tmp_path, mct_scale=4, mask="auto_fov")
    record = normalization_record({}, ["auto_fov"], [4])
    identity_cgan(monkeypatch, {"tile_size": TILE, "normalization": record})
    (tmp_path / "c.pt").write_bytes(b"x")
    r = run(tmp_path / "c.pt", tmp_path / "mct_raw.tif", tmp_path / "o.tif")
    assert "percentiles within its field of view" in r["normalization"]["limits_over"]
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "o.tif"), tifffile.imread(tmp_path / "mct.tif")
    )


def test_stack_limits_are_np_percentile_of_the_whole_stack() -> None:
    from rocksr.data.normalize import normalize_image, stretch_fixed, stretch_limits

    rng = np.random.default_rng(0)
    for dtype, hi in ((np.uint8, 256), (np.uint16, 65536)):
        stack = rng.integers(0, hi, (5, 13, 17)).astype(dtype)
        for pl, ph in ((0.5, 99.5), (0.0, 100.0), (2.0, 97.0), (33.3, 66.6)):
            lo_, hi_, how = inputs_mod.stack_limits(lambda i, s=stack: s[i], 5, pl, ph)
            assert (lo_, hi_) == tuple(np.percentile(stack, [pl, ph])), (dtype, pl, ph)
            assert how.startswith("exact")
    f = rng.normal(size=(3, 20, 20))
    assert inputs_mod.stack_limits(lambda i: f[i], 3, 1, 99)[:2] == tuple(np.percentile(f, [1, 99]))
    a = rng.integers(0, 4000, (30, 30)).astype(np.uint16)
    np.testing.assert_array_equal(
        stretch_fixed(a, *stretch_limits(a, 0.5, 99.5)), normalize_image(a)
    )


# ------------------------------------------------------------------------------ DDPM


def _sample_reference(ckpt: Path, img: np.ndarray, seed: int, sampler="ddim", steps=STEPS):
    from rocksr.data.values import from_model, to_model
    from rocksr.diffusion.sampling import sample, sampling_options
    from rocksr.inference import load_for_inference

    _, model, cfg = load_for_inference(ckpt)
    g = torch.Generator().manual_seed(seed)
    x = sample(model, to_model(img[None]), cfg["schedule"], sampler, steps, g,
               **sampling_options(cfg))  # fmt: skip
    return from_model(x)[0]


@pytest.mark.parametrize("fuse", ["step", "end"])
def test_one_tile_image_equals_diffusion_sample(tmp_path, ckpts, fuse) -> None:
    img = smooth_image(TILE, TILE, seed=2)
    tifffile.imwrite(tmp_path / "in.tif", img)
    run(ckpts["ddpm"], tmp_path / "in.tif", tmp_path / "o.tif", normalize="none", fuse=fuse,
        seed=7)  # fmt: skip
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "o.tif"), _sample_reference(ckpts["ddpm"], img, 7)
    )


@pytest.mark.parametrize(
    "sampler,steps,threshold",
    [("ddim", 4, None), ("ddim", 4, {"mode": "none"}), ("ancestral", None, None),
     ("dpmsolver", 4, {"mode": "clip", "range": 0.8})],
)  # fmt: skip
def test_fused_sampling_with_a_pointwise_model_equals_whole_image_sampling(
    sampler, steps, threshold
) -> None:
    """With a model that looks at one pixel only, tiles carry no position information, so
    the fused tiled sampler must equal sampling the whole image in one piece (any sampler,
    clipping or not, eps or x0 prediction; not dynamic thresholding, whose quantile is taken
    per tile)."""
    from rocksr.diffusion.sampling import sample
    from rocksr.diffusion.schedule import make_schedule

    schedule = make_schedule(20, "linear", 1e-4, 0.2)

    def pointwise(x, t):
        return torch.tanh(0.7 * x[:, 1:2] - 0.2 * x[:, :1] + 1e-3 * t.view(-1, 1, 1, 1))

    mct = torch.rand(1, 1, 37, 45) * 2 - 1
    for prediction in ("epsilon", "sample"):
        kw = {"prediction": prediction, "threshold": threshold}
        want = sample(pointwise, mct, schedule, sampler, steps,
                      torch.Generator().manual_seed(3), **kw)  # fmt: skip
        got = fused_mod.fused_sample(
            pointwise, mct, schedule, sampler, steps, torch.Generator().manual_seed(3),
            tile=16, overlap=6, batch_size=5, **kw,
        )  # fmt: skip
        torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


def test_ddpm_is_deterministic_for_a_seed_and_samples_share_sample_zero(tmp_path, ckpts) -> None:
    img = smooth_image(40, 36, seed=3)
    tifffile.imwrite(tmp_path / "in.tif", img)
    inp = tmp_path / "in.tif"
    for fuse in ("step", "end"):
        a, b, c = (tmp_path / f"{fuse}{i}.tif" for i in range(3))
        run(ckpts["ddpm"], inp, a, normalize="none", fuse=fuse, seed=1)
        run(ckpts["ddpm"], inp, b, normalize="none", fuse=fuse, seed=1)
        run(ckpts["ddpm"], inp, c, normalize="none", fuse=fuse, seed=2)
        np.testing.assert_array_equal(tifffile.imread(a), tifffile.imread(b))
        assert not np.array_equal(tifffile.imread(a), tifffile.imread(c))
    # K samples: sample 0 is the K = 1 output; mean uint8, std float32 grey levels
    r = run(ckpts["ddpm"], inp, tmp_path / "k.tif", normalize="none", samples=3, seed=1)
    assert set(r["outputs"]) == {"pred", "mean", "std"}
    pred = tifffile.imread(tmp_path / "k.tif")
    mean = tifffile.imread(tmp_path / "k_mean.tif")
    std = tifffile.imread(tmp_path / "k_std.tif")
    np.testing.assert_array_equal(pred, tifffile.imread(tmp_path / "step0.tif"))
    assert mean.shape == std.shape == img.shape
    assert mean.dtype == np.uint8 and std.dtype == np.float32
    assert std.min() >= 0 and std.max() > 0
    assert description(tmp_path / "k_std.tif")["array"].startswith("std")
    assert description(tmp_path / "k.tif")["samples"] == 3


def test_ddpm_without_normalization_record_is_a_clear_error(tmp_path, ckpts) -> None:
    tifffile.imwrite(tmp_path / "in.tif", smooth_image(32, 32))
    with pytest.raises(RocksrError) as e:
        run(ckpts["ddpm_norecord"], tmp_path / "in.tif", tmp_path / "o.tif")
    msg = str(e.value)
    assert "ddpm_old.pt" in msg and "--normalize percentile" in msg and "\n" not in msg
    assert only(tmp_path) == ["in.tif"]
    # the old checkpoint works with an explicit choice (and the default tile size is stated)
    r = run(ckpts["ddpm_norecord"], tmp_path / "in.tif", tmp_path / "o.tif",
            normalize="percentile")  # fmt: skip
    assert r["normalization"]["mode"] == "percentile" and r["tile_source"] == "checkpoint"
    # an image smaller than the default tile of a checkpoint that records none names both
    old = make_checkpoint(tmp_path / "older.pt", "ddpm", record=False)
    with pytest.raises(RocksrError, match=r"in.tif: image 32x32 is smaller than one 128 px"):
        run(old, tmp_path / "in.tif", tmp_path / "o2.tif", normalize="percentile")


# ------------------------------------------------------------------------------ stacks


def test_stack_page_range_to_tiff_and_ome_zarr(tmp_path, ckpts) -> None:
    stack = np.stack([smooth_image(32, 40, seed=s) for s in range(6)])
    stack[3] = stack[2]  # two equal slices -> equal outputs with the shared noise field
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    r = run(ckpts["ddpm"], tmp_path / "stack.tif", tmp_path / "o.tif", pages="1-4",
            normalize="none", seed=4)  # fmt: skip
    out = tifffile.imread(tmp_path / "o.tif")
    assert out.shape == (4, 32, 40) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], out[2])  # same input, same noise field
    assert r["pages"] == [1, 4] and r["shape"] == [4, 32, 40]
    c = r["consistency"]
    want = np.mean([np.abs(out[z + 1].astype(int) - out[z]).mean() for z in range(3)])
    assert c["output_mean_abs_diff"] == pytest.approx(want)
    assert c["input_mean_abs_diff"] > 0
    # slice 0 of the stack = the same slice enhanced on its own
    tifffile.imwrite(tmp_path / "s1.tif", stack[1])
    run(ckpts["ddpm"], tmp_path / "s1.tif", tmp_path / "s1o.tif", normalize="none", seed=4)
    np.testing.assert_array_equal(out[0], tifffile.imread(tmp_path / "s1o.tif"))

    # OME-Zarr, cGAN, a page range (K > 1 is refused for a deterministic model)
    r = run(ckpts["cgan"], tmp_path / "stack.tif", tmp_path / "o.ome.zarr", pages="2-5")
    g = zarr.open(str(tmp_path / "o.ome.zarr"), mode="r")
    ms = g.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    arr = g[ms["datasets"][0]["path"]]
    assert arr.shape == (4, 32, 40) and arr.dtype == np.uint8
    assert g.attrs["rocksr"]["pages"] == [2, 5]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # the written OME-Zarr is itself a valid input (first multiscale level), and replaceable
    r2 = run(ckpts["cgan"], tmp_path / "o.ome.zarr", tmp_path / "o2.tif", normalize="none")
    assert r2["shape"] == [4, 32, 40]
    run(ckpts["cgan"], tmp_path / "stack.tif", tmp_path / "o.ome.zarr", pages="0")
    assert zarr.open(str(tmp_path / "o.ome.zarr"), mode="r")["0"].shape == (1, 32, 40)


def test_zarr_stack_input_with_samples(tmp_path, ckpts) -> None:
    stack = np.stack([smooth_image(16, 24, seed=s, dtype=np.uint16) for s in range(3)])
    z = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=stack.shape, dtype="uint16",
                        chunks=(1, 16, 24))  # fmt: skip
    z[:] = stack
    r = run(ckpts["ddpm"], tmp_path / "in.zarr", tmp_path / "o.ome.zarr", samples=2,
            pages="1-2", slice_noise="independent")  # fmt: skip
    assert r["normalization"]["limits_over"].startswith("exact, over 2 slice(s)")
    for name, dtype in (("o", np.uint8), ("o_mean", np.uint8), ("o_std", np.float32)):
        a = zarr.open(str(tmp_path / f"{name}.ome.zarr"), mode="r")["0"]
        assert a.shape == (2, 16, 24) and a.dtype == dtype


# ------------------------------------------------------------------------------ bad input


def _bad_inputs(tmp_path: Path, ckpts) -> list[tuple[dict, str, str]]:
    """(enhance arguments, file the message must name, words it must contain)."""
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, smooth_image(32, 32))
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, smooth_image(12, 40))
    colour = tmp_path / "colour.png"
    from PIL import Image

    rgb = np.stack([smooth_image(32, 32, seed=s) for s in range(3)], axis=-1)
    Image.fromarray(rgb).save(colour)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([smooth_image(32, 32, seed=s) for s in range(5)]))
    corrupt = tmp_path / "corrupt.pt"
    data = ckpts["cgan"].read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    stub = tmp_path / "stub.pt"  # torch raises OSError (not RuntimeError) for this one
    stub.write_bytes(data[:5000])
    bad_tif = tmp_path / "broken.tif"
    bad_tif.write_bytes(good.read_bytes()[:60])
    mixed = tmp_path / "mixed.tif"  # page 2 is colour: found only mid-run
    with tifffile.TiffWriter(mixed) as tw:
        for s in range(2):
            tw.write(smooth_image(32, 32, seed=s))
        tw.write(rgb, photometric="rgb")
    out = tmp_path / "out" / "o.tif"
    c = ckpts["cgan"]
    return [
        ({"checkpoint": tmp_path / "nope.pt", "input": good, "output": out}, "nope.pt",
         "does not exist"),
        ({"checkpoint": corrupt, "input": good, "output": out}, "corrupt.pt", "truncated"),
        ({"checkpoint": stub, "input": good, "output": out}, "stub.pt", "truncated"),
        ({"checkpoint": c, "input": small, "output": out}, "small.tif", "smaller than one"),
        ({"checkpoint": c, "input": colour, "output": out}, "colour.png", "colour"),
        ({"checkpoint": c, "input": stack, "output": out, "pages": "2-9"}, "stack.tif",
         "outside the stack"),
        ({"checkpoint": c, "input": stack, "output": out, "pages": "x"}, "stack.tif",
         "not understood"),
        ({"checkpoint": c, "input": good, "output": tmp_path / "nodir" / "o.tif"}, "nodir",
         "does not exist"),
        ({"checkpoint": c, "input": good, "output": tmp_path / "out" / "o.jpg"}, "o.jpg",
         "unknown output type"),
        ({"checkpoint": c, "input": stack, "output": tmp_path / "out" / "o.png"}, "o.png",
         "PNG"),
        ({"checkpoint": c, "input": tmp_path / "missing.tif", "output": out}, "missing.tif",
         "does not exist"),
        ({"checkpoint": c, "input": bad_tif, "output": out}, "broken.tif", "unreadable"),
        # normalize none: no limits pass, so the colour page is met after slices were written
        ({"checkpoint": c, "input": mixed, "output": out, "normalize": "none"}, "mixed.tif",
         "page 2 is a colour image"),
        ({"checkpoint": ckpts["ddpm"], "input": mixed, "output": tmp_path / "out" / "o.ome.zarr",
          "samples": 2, "normalize": "none"}, "mixed.tif", "colour"),
        ({"checkpoint": c, "input": mixed, "output": out}, "mixed.tif", "colour"),
        ({"checkpoint": c, "input": good, "output": out, "overlap": TILE}, "overlap",
         "overlap"),
        ({"checkpoint": c, "input": good, "output": out, "crop": 33}, "good.tif",
         "--crop 33 is larger than the input"),
        ({"checkpoint": c, "input": tifffile_u16(tmp_path), "output": out, "normalize": "none"},
         "u16.tif", "8-bit"),
    ]  # fmt: skip


def tifffile_u16(tmp_path: Path) -> Path:
    p = tmp_path / "u16.tif"
    tifffile.imwrite(p, smooth_image(32, 32, dtype=np.uint16))
    return p


def test_bad_inputs_are_one_line_errors_naming_the_file_and_leave_nothing(tmp_path, ckpts) -> None:
    (tmp_path / "out").mkdir()
    for kw, name, words in _bad_inputs(tmp_path, ckpts):
        kw = dict(kw)
        with pytest.raises(RocksrError) as e:
            run(kw.pop("checkpoint"), kw.pop("input"), kw.pop("output"), **kw)
        msg = str(e.value)
        assert name in msg and words in msg and "\n" not in msg, msg
        assert only(tmp_path / "out") == [], (msg, only(tmp_path / "out"))


def test_enhance_figure_shows_the_same_pixels_of_a_cropped_enhancement(tmp_path, monkeypatch):
    """The figure's truth panels come from the same square as an enhanced image of the slice's
    centre only (``enhance.crop``), for even and odd margins."""
    import argparse

    import rocksr.figures.enhance_figure as fig_mod
    from rocksr.stages import enhance_figure as stage

    seen, titles = {}, []
    monkeypatch.setattr(
        fig_mod, "enhance_figure", lambda panels, t, p: (seen.update(panels), titles.append(t))
    )
    img = smooth_image(64, 71, seed=3)
    tifffile.imwrite(tmp_path / "mct.tif", img)
    tifffile.imwrite(tmp_path / "sem.tif", img)
    for size, figure in ((40, 20), (33, 21), (40, 40)):
        y0, x0 = (64 - size) // 2, (71 - size) // 2
        tifffile.imwrite(tmp_path / "e.tif", img[y0 : y0 + size, x0 : x0 + size])
        stage.run(argparse.Namespace(mct=str(tmp_path / "mct.tif"), sem=str(tmp_path / "sem.tif"),
                                     enhanced=[f"m={tmp_path / 'e.tif'}"], crop=figure, title=None,
                                     out=str(tmp_path / "f.png")))  # fmt: skip
        panels = list(seen.values())
        assert panels[0].shape == (figure, figure)
        for p in panels[1:]:
            np.testing.assert_array_equal(p, panels[0])
        assert f"central {size}x{size} px (of 64x71" in titles[-1]
