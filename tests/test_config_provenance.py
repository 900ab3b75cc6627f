"""Where each config value comes from (rocksr.config.provenance)."""

from __future__ import annotations

import yaml

from rocksr.config.provenance import inherited, key_list, resolved_text, value_sources


def test_later_layers_win_and_inherited_keys_are_listed() -> None:
    base = {"ddpm": {"max_steps": 60, "lr": 1e-3}, "split": {"strategy": "regions"}}
    study = {"ddpm": {"lr": 5e-5}, "run": "paper"}
    src = value_sources([("config.yaml", base), ("paper.yaml", study)])
    assert src == {
        "ddpm.max_steps": "config.yaml",
        "ddpm.lr": "paper.yaml",
        "split.strategy": "config.yaml",
        "run": "paper.yaml",
    }
    assert inherited(src, "config.yaml") == ["ddpm.max_steps", "split.strategy"]


def test_a_replaced_list_or_section_is_one_value() -> None:
    src = value_sources(
        [("a", {"tiling": {"angles": [0, 90]}}), ("b", {"tiling": {"angles": [0]}})]
    )
    assert src == {"tiling.angles": "b"}


def test_resolved_text_names_every_source_and_parses_back() -> None:
    config = {"run": "x", "ddpm": {"lr": 0.001, "crop": None}, "tiling": {"angles": [0, 90]}}
    src = value_sources([("config.yaml", {"ddpm": {"lr": 0.001}}), ("x.yaml", {"run": "x"})])
    text = resolved_text(config, src)
    assert "ddpm.lr: 0.001  # config.yaml" in text
    assert "run: x  # x.yaml" in text
    assert "ddpm.crop: null  # default" in text
    back = yaml.safe_load(text)
    assert back["tiling.angles"] == [0, 90] and back["ddpm.lr"] == 0.001


def test_the_paper_config_is_complete_on_its_own() -> None:
    """`--configfile configs/paper.yaml` merges onto config.yaml: the study config must set every
    key that config.yaml sets, or it silently inherits the demo's CPU budget (it did: the cGAN
    would have stopped after config.yaml's 60 steps). configs/semireal.yaml is, on purpose, an
    overlay on the demo's recipe (its header says so; the workflow lists what it inherits)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    base = yaml.safe_load((repo / "config.yaml").read_text())
    for name in ("paper.yaml",):
        study = yaml.safe_load((repo / "configs" / name).read_text())
        src = value_sources([("config.yaml", base), (name, study)])
        assert inherited(src, "config.yaml") == [], name


def test_config_resolved_yaml_names_a_value_from_the_configfile(tmp_path) -> None:
    """A real (tiny) run with `--configfile extra.yaml`: the value set only there is recorded
    with that file as its source, and the start-up line lists what config.yaml supplied."""
    from helpers_workflow import REPO, snakemake

    tiny = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny))
    (tmp_path / "extra.yaml").write_text("ddpm:\n  weight_decay: 0.001\n")
    target = "results/tiny/raw/tiny0/mct.tif"  # before --configfile, which takes several files
    r = snakemake(tmp_path, target, "--configfile", str(tmp_path / "extra.yaml"))
    text = (tmp_path / "results" / "tiny" / "config.resolved.yaml").read_text()
    assert f"ddpm.weight_decay: 0.001  # {tmp_path / 'extra.yaml'}" in text
    assert "ddpm.lr: 0.001  # config.yaml" in text
    assert "store.compressor: lz4  # default" in text  # filled by the schema
    assert "value(s) come from config.yaml, not from" in r.stderr


def test_a_section_replaced_by_a_mapping_and_empty_sections() -> None:
    src = value_sources(
        [
            ("config.yaml", {"samples": [1, 2], "resources": {"train_ddpm": {"gpu": 1}}}),
            ("study.yaml", {"samples": {"mct": "*.tif", "sem": "*.png"}, "resources": {}}),
        ]
    )
    assert src == {
        "samples.mct": "study.yaml",
        "samples.sem": "study.yaml",
        "resources.train_ddpm.gpu": "config.yaml",
    }
    assert inherited(src, "config.yaml") == ["resources.train_ddpm.gpu"]


def test_key_list_names_a_few_keys_and_counts_the_rest_by_section() -> None:
    assert key_list(["a.x", "b.y"]) == "a.x, b.y"
    keys = [f"cgan.k{i}" for i in range(5)] + ["ddpm.lr", "ddpm.max_steps", "split.seed"]
    assert key_list(keys) == (
        "cgan.k0, cgan.k1, cgan.k2, cgan.k3, cgan.k4, ddpm.lr and 2 more (in ddpm, split)"
    )
