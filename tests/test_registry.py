"""The model registry: a kind added in one entry trains, predicts and appears in Table 1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_predict import make_dataset
from torch import nn

from rocksr.config.training import Loop, resolve_training
from rocksr.models.registry import (
    ModelKind,
    get_kind,
    kind_names,
    register,
    unregister,
)


@dataclass
class Toy(Loop):
    lr: float = 1e-2


class ToyTask:
    """A 3x3 convolution trained with L1: the least a task must do."""

    kind = "toy"
    select_key = "val_l1"

    def __init__(self, cfg: dict, rt, seed: int) -> None:
        self.cfg, self.rt = cfg, rt
        self.net = rt.prepare(nn.Conv2d(1, 1, 3, padding=1))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=float(cfg["lr"]))

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        return resolve_training(Toy, cfg, "toy")

    arch = {"conv": 3}

    def check_tiles(self, tile, store) -> None:
        pass

    def prepare_validation(self, val_ds) -> None:
        pass

    def models(self) -> dict:
        return {"net": self.net}

    def train_step(self, mct, sem, gen) -> dict:
        loss = torch.abs(self.net(mct) - sem).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, loader, max_batches) -> dict:
        vals = [torch.abs(self.net(m) - s).mean().item() for m, s in loader]
        return {"val_l1": float(np.mean(vals))}

    def after_validation(self, metrics) -> None:
        pass

    @torch.no_grad()
    def predict(self, mct):
        return self.net(mct).clamp(-1, 1)

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state(self) -> dict:
        return {
            "models": {"net": self.net.state_dict()},
            "ema": None,
            "optimizers": {"net": self.opt.state_dict()},
            "schedulers": {},
        }

    def load(self, ckpt) -> None:
        self.net.load_state_dict(ckpt["models"]["net"])
        self.opt.load_state_dict(ckpt["optimizers"]["net"])


def _inference(ckpt, cfg, device, path=None):
    net = nn.Conv2d(1, 1, 3, padding=1)
    net.load_state_dict(ckpt["models"]["net"])
    return net.to(device).eval()


TOY = ModelKind(
    name="toy",
    description="a 3x3 convolution",
    section=Toy,
    stochastic=False,
    build=lambda cfg: {"net": nn.Conv2d(1, 1, 3, padding=1)},
    arch=lambda cfg: {"conv": 3},
    task=lambda: ToyTask,
    inference=_inference,
    predictor=lambda model, cfg, sampler="ddim", steps=None: lambda x, g: model(x).clamp(-1, 1),
    curves=(("loss", ("loss",), ("val_l1",)),),
)


@pytest.fixture
def toy_kind():
    register(TOY)
    yield TOY
    unregister("toy")


def test_builtin_kinds_come_from_their_modules() -> None:
    assert {"cgan", "ddpm"} <= set(kind_names())
    for name in ("cgan", "ddpm"):
        assert get_kind(name).name == name
    assert get_kind("ddpm").stochastic and not get_kind("cgan").stochastic


def test_model_kinds_are_dispatched_by_the_registry_not_by_name() -> None:
    """At most 5 comparisons of a kind with a model kind's name remain in the package and the
    workflow (the registry dispatches; a kind's own module may name itself)."""
    import re

    root = Path(__file__).resolve().parents[1]
    names = "|".join(kind_names())
    kind = r"\b\w*kind\w*(?:\[[^]]*\]|\.\w+)*"
    literal = rf"[\"']({names}|baseline)[\"']"
    pattern = re.compile(rf"{kind}\s*(?:==|!=)\s*{literal}|{literal}\s*(?:==|!=)\s*{kind}")
    sources = [*(root / "rocksr").rglob("*.py"), *(root / "workflow").rglob("*.smk")]
    hits = [
        f"{path.relative_to(root)}:{n}"
        for path in sources
        if "kinds" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert len(hits) <= 5, hits
    assert pattern.search('if r.kind == "baseline":') and pattern.search("kind != 'ddpm'")


def test_unknown_kind_is_one_line_with_a_suggestion() -> None:
    with pytest.raises(ValueError, match=r"unknown model kind 'ddmp'.*did you mean 'ddpm'"):
        get_kind("ddmp")


def test_a_registered_kind_trains_predicts_and_enters_table1(tmp_path: Path, toy_kind) -> None:
    from rocksr.stages.baseline import predict_baseline
    from rocksr.stages.evaluate import evaluate
    from rocksr.stages.predict import predict
    from rocksr.stages.train import train

    torch.set_num_threads(1)
    store, manifest, splits = make_dataset(tmp_path)
    assert "toy" in kind_names()
    best = tmp_path / "toy" / "best.pt"
    train(
        "toy",
        store,
        splits,
        best_ckpt=best,
        history_csv=tmp_path / "toy" / "history.csv",
        samples_dir=tmp_path / "toy" / "val",
        state_dir=tmp_path / "state",
        params={"max_steps": 4, "val_every": 2, "ckpt_every": 2, "batch_size": 2},
        seed=0,
        device="cpu",
    )
    assert best.is_file()
    predict(best, store, splits, tmp_path / "toy.zarr", device="cpu", n_samples=3)
    predict_baseline("mean", store, splits, tmp_path / "mean.zarr")
    table = evaluate(
        {"toy": str(tmp_path / "toy.zarr"), "mean": str(tmp_path / "mean.zarr")},
        store,
        splits,
        manifest,
        tmp_path / "per_tile.csv",
        tmp_path / "t1.csv",
        tmp_path / "t1.md",
    )
    assert list(table["model"]) == ["toy", "mean"]
    assert table.loc[0, "kind"] == "toy" and table.loc[0, "n_samples"] == 1
    assert "| toy | toy |" in (tmp_path / "t1.md").read_text()
    assert len(pd.read_csv(tmp_path / "per_tile.csv").query("model == 'toy'")) == 5
